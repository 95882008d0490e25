"""The text a router embeds for one request: a plain prompt string, or an OpenAI chat ``messages``
list flattened to one string. The one place for this rule: batch routing (``router route-logs``)
calls ``prompt_text`` and the Serve app is meant to call ``flatten_messages`` too, so a logged
request routes as it did live.

Flattening rule (the paper routes single prompts; this is our choice, the one the Serve app
adopted first): the non-blank text of the **user** turns, in order, joined by blank lines. System
and assistant turns are left out because the router was trained on user prompts; a chat without
any user text is routed on all its turns. Content may be a string or OpenAI's list of parts, of
which the text parts are read (images, audio and malformed parts are skipped).
"""

from __future__ import annotations

from typing import Any


class MalformedPrompt(ValueError):
    """A request whose prompt cannot be turned into text; the message is the reason."""


def _content_text(content: Any, i: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    raise MalformedPrompt(f"messages[{i}].content must be a string or a list of parts")


def flatten_messages(messages: Any) -> str:
    """The text to route a chat on (see module doc). Raises ``MalformedPrompt`` with the reason."""
    if hasattr(messages, "tolist") and not isinstance(messages, (str, bytes)):
        messages = messages.tolist()  # numpy / Arrow arrays from columnar readers
    if not isinstance(messages, (list, tuple)) or not messages:
        raise MalformedPrompt("messages must be a non-empty list")
    texts: list[tuple[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m:
            raise MalformedPrompt(f"messages[{i}] must be an object with a role")
        texts.append((str(m["role"]), _content_text(m.get("content"), i)))
    user = [t for role, t in texts if role == "user" and t.strip()]
    chosen = user or [t for _, t in texts if t.strip()]
    if not chosen:
        raise MalformedPrompt("messages contain no text to route on")
    return "\n\n".join(chosen)


def check_encodable(text: str, where: str = "prompt") -> str:
    """``text`` if it is valid Unicode; JSON's ``\\ud800`` escapes decode to lone surrogates, which the
    tokenizer cannot take, so they are the caller's error rather than a crash in the encoder."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedPrompt(f"{where} is not valid Unicode text ({exc.reason} at position {exc.start})") from None
    return text


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
    return check_encodable(text)
