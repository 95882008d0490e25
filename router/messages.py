"""The text a router embeds for one request: a plain prompt string, or an OpenAI chat ``messages``
list flattened to one string. The one place for this rule — the Serve app and batch routing
(``router route-logs``) both call ``prompt_text`` so a logged request routes as it did live.

Flattening rule (the paper is silent; our choice): the text of the **last user message**. The
router is trained on single-turn prompts, and the encoder reads only its first 256 tokens, so
joining a whole conversation would let a long system prompt or old turns push the current
request out of view. Content may be a string or a list of parts; ``text`` parts are joined with
a newline, other parts (images, audio) are ignored.
"""

from __future__ import annotations

from typing import Any


class MalformedPrompt(ValueError):
    """A request whose prompt cannot be turned into text; the message is the reason."""


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for k, part in enumerate(content):
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                if part.get("type", "text") == "text":
                    text = part.get("text")
                    if not isinstance(text, str):
                        raise MalformedPrompt(f"{where}.content[{k}].text is {type(text).__name__}, not a string")
                    parts.append(text)
            else:
                raise MalformedPrompt(f"{where}.content[{k}] is {type(part).__name__}, not an object")
        return "\n".join(parts)
    if content is None:
        return ""
    raise MalformedPrompt(f"{where}.content is {type(content).__name__}, not a string or a list of parts")


def flatten_messages(messages: Any) -> str:
    """The text of the last ``user`` message of an OpenAI ``messages`` list (see module doc)."""
    if hasattr(messages, "tolist") and not isinstance(messages, (str, bytes)):
        messages = messages.tolist()  # numpy / Arrow arrays from columnar readers
    if not isinstance(messages, (list, tuple)):
        raise MalformedPrompt(f"messages is {type(messages).__name__}, not a list")
    if not messages:
        raise MalformedPrompt("messages is an empty list")
    last_user = None
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise MalformedPrompt(f"messages[{i}] is {type(msg).__name__}, not an object")
        role = msg.get("role")
        if not isinstance(role, str):
            raise MalformedPrompt(f"messages[{i}].role is missing or not a string")
        if role == "user":
            last_user = i
    if last_user is None:
        raise MalformedPrompt("messages has no user message")
    return _content_text(messages[last_user].get("content"), f"messages[{last_user}]")


def prompt_text(value: Any) -> str:
    """The non-empty text to embed for a prompt field value: a string as is, a ``messages`` list
    flattened. Raises ``MalformedPrompt`` (a ``ValueError``) with the reason otherwise."""
    if value is None:
        raise MalformedPrompt("prompt is missing (null)")
    if isinstance(value, bytes):
        raise MalformedPrompt("prompt is bytes, not text")
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        text = flatten_messages(value)
    else:
        raise MalformedPrompt(f"prompt is {type(value).__name__}, not a string or a messages list")
    if not text.strip():
        raise MalformedPrompt("prompt text is empty")
    return text
