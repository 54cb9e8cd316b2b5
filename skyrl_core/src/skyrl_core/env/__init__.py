"""Text environments: the grader API that env packages implement."""

from skyrl_core.env.base import BaseTextEnv, BaseTextEnvStepOutput, ConversationType, Message

__all__ = ["BaseTextEnv", "BaseTextEnvStepOutput", "ConversationType", "Message"]
