"""Prompt templates: a system/instruction part, the question, and the response, rendered per sample.

    >>> from interp.templates import Template, as_records, render_all
    >>> t = Template(system="{instruction}", user="{question}", response="{response}")
    >>> recs = as_records([dict(instruction="Lie.", question="2+3?", response="The answer is: 7", label=1, group="q0")])
    >>> r = render_all(t, recs, tokenizer=None)[0]
    >>> r.prompt, r.response
    ('Lie.\\n2+3?', 'The answer is: 7')

Fields are `str.format` names (`{question}`); every field a template part uses must be present in every sample,
else `render_all` raises one error that lists the missing fields, the first samples lacking them, and the fields
the samples do have. `Template()` (the default) reads `{text}` and has no system or response part.

Chat templates: with `chat="auto"` (default) the tokenizer's chat template is applied when it has one
(system -> a "system" message, user -> a "user" message, then the generation prompt), and plain text
(`system + "\\n" + user`) is used otherwise. CODI models are the exception: they see prompts in the format they were
trained on (their `CODIConfig.prompt_template` around the rendered text), so for them "auto" means no chat
template; pass `chat="always"` to force it. The response part is never wrapped: it is the text after `<eot>`
(CODI) or after the prompt (plain models).

Prompts may be: a list of strings (each becomes `{"text": s}`), a list of dicts, a pandas DataFrame, or an object
with `.records()`, `.to_records()` or `.samples` (e.g. a probes task). The sample table keeps `id` (default: the
index as a string), `label`, `group` and every other scalar column the samples carry.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Template", "Rendered", "as_records", "render_all", "template_fields", "plain_records"]

CHAT_MODES = ("auto", "always", "never")


def template_fields(fmt: str | None) -> list[str]:
    """The field names a format string uses, in order (`"{a} and {b}"` -> `["a", "b"]`).

    >>> template_fields("{instruction}\\n{question}")
    ['instruction', 'question']
    """
    if not fmt:
        return []
    out = []
    for _, name, _, _ in string.Formatter().parse(fmt):
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise ValueError(
                f"template {fmt!r} uses a positional field '{{{name}}}'; name every field, "
                f"e.g. '{{question}}'."
            )
        root = name.split(".")[0].split("[")[0]
        if root not in out:
            out.append(root)
    return out


@dataclass
class Template:
    """How a sample becomes text: `system` (instruction, optional), `user` (the question), `response` (optional,
    teacher forced after the prompt / after `<eot>`). `chat`: "auto" | "always" | "never" (see module docstring).

    >>> Template(user="{question}").fields()
    ['question']
    """

    system: str | None = None
    user: str = "{text}"
    response: str | None = None
    chat: str = "auto"

    def __post_init__(self) -> None:
        if self.chat not in CHAT_MODES:
            raise ValueError(f"Template.chat={self.chat!r}; choose one of {CHAT_MODES}.")
        if not self.user:
            raise ValueError(
                "Template.user is empty; give the question part, e.g. Template(user='{question}')."
            )
        self.fields()  # validates the format strings early

    def fields(self) -> list[str]:
        """Every field name the template needs."""
        out: list[str] = []
        for part in (self.system, self.user, self.response):
            out += [f for f in template_fields(part) if f not in out]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The template as JSON-able fields (a CODI store keeps it in meta.json).

        >>> Template(system="{instruction}", user="{question}").to_dict()
        {'system': '{instruction}', 'user': '{question}', 'response': None, 'chat': 'auto'}
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Template:
        """The template back from `to_dict`.

        >>> t = Template(user="{question}", response="{answer}")
        >>> Template.from_dict(t.to_dict()) == t
        True
        """
        return cls(**d)

    def uses_chat(self, tokenizer, codi: bool = False) -> bool:
        """Whether the tokenizer's chat template is applied for this model.

        >>> import interp
        >>> tok = interp.load_model("tiny-llama").tokenizer                     # has no chat template
        >>> Template().uses_chat(tok), Template().uses_chat(None)
        (False, False)
        """
        has = tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))
        if self.chat == "always":
            if not has:
                raise ValueError(
                    "Template(chat='always') but this tokenizer has no chat template; use "
                    "chat='auto' or 'never'."
                )
            return True
        return has and self.chat == "auto" and not codi


@dataclass
class Rendered:
    """One rendered sample: `prompt` (what precedes `<bot>` / the response), `response` (or None).

    >>> r = render_all(Template(user="Q: {question}", response="{answer}"), [dict(id="0", question="1+1?", answer="2")])
    >>> r[0]
    Rendered(prompt='Q: 1+1?', response='2')
    """

    prompt: str
    response: str | None


def as_records(prompts: Any) -> list[dict[str, Any]]:
    """Normalise prompts (strings, dicts, a DataFrame, or a task object) into a list of dicts with an `id`.

    >>> as_records(["a", "b"])
    [{'text': 'a', 'id': '0'}, {'text': 'b', 'id': '1'}]
    """
    if prompts is None:
        raise ValueError(
            "prompts is None; give a list of strings or of dicts (e.g. {'text': ..., 'label': ...})."
        )
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list, not one string; wrap it: [prompt].")
    for attr in ("records", "to_records"):
        if hasattr(prompts, attr) and callable(getattr(prompts, attr)) and not _is_frame(prompts):
            prompts = getattr(prompts, attr)()
            break
    else:
        if hasattr(prompts, "samples") and not isinstance(prompts, (list, tuple)):
            prompts = prompts.samples
    if _is_frame(prompts):
        prompts = prompts.to_dict(orient="records")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts is empty; give at least one prompt.")
    out = [_record(i, p) for i, p in enumerate(prompts)]
    ids = [r["id"] for r in out]
    if len(set(ids)) != len(ids):
        dup = sorted({x for x in ids if ids.count(x) > 1})[:5]
        raise ValueError(f"sample ids repeat ({dup}); give each prompt a unique 'id' or leave 'id' out.")
    return out


def _record(i: int, p: Any) -> dict[str, Any]:
    """One prompt (string, dict, pandas row, dataclass) as a dict with a string `id` (its index by default)."""
    if isinstance(p, str):
        rec = {"text": p}
    elif isinstance(p, dict):
        rec = dict(p)
    elif hasattr(p, "to_dict"):
        rec = dict(p.to_dict())
    elif hasattr(p, "__dataclass_fields__"):
        rec = asdict(p)
    else:
        raise TypeError(
            f"prompt {i} is a {type(p).__name__}; each prompt must be a string or a dict "
            f"(e.g. {{'text': ..., 'label': ..., 'group': ...}})."
        )
    rec["id"] = str(rec.get("id", i))
    return rec


def _is_frame(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "to_dict")


def _check_fields(template: Template, records: Sequence[dict[str, Any]]) -> None:
    needed = template.fields()
    missing: dict[str, list[str]] = {}
    for rec in records:
        for f in needed:
            if rec.get(f) is None:
                missing.setdefault(f, []).append(rec["id"])
    if missing:
        have = sorted({k for rec in records for k, v in rec.items() if v is not None})
        parts = [
            f"'{f}' (missing in {len(ids)} of {len(records)} samples, e.g. ids {ids[:3]})"
            for f, ids in missing.items()
        ]
        raise ValueError(
            f"the prompt template needs fields the samples lack: {'; '.join(parts)}. The samples have fields "
            f"{have}. Add the missing fields to every prompt, or pass a template that uses only those fields, "
            f"e.g. interp.templates.Template(user='{{{have[0] if have else 'text'}}}')."
        )


def render_all(
    template: Template, records: Sequence[dict[str, Any]], tokenizer=None, codi: bool = False
) -> list[Rendered]:
    """Render every record with `template` (checks all fields first; raises before any work).

    >>> render_all(Template(), [{"text": "hi", "id": "0"}])[0].prompt
    'hi'
    """
    _check_fields(template, records)
    chat = template.uses_chat(tokenizer, codi=codi)
    out = []
    for rec in records:
        fields = {k: ("" if v is None else v) for k, v in rec.items()}
        system = template.system.format(**fields) if template.system else ""
        user = template.user.format(**fields)
        if chat:
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": user}
            ]
            prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            prompt = f"{system}\n{user}" if system else user
        response = template.response.format(**fields) if template.response else None
        out.append(Rendered(prompt=prompt, response=response))
    return out


def plain_records(template: Template, prompts: Any, tokenizer) -> list[dict[str, Any]]:
    """Records for a plain model: `text` = rendered prompt + response (the chat template applied where the tokenizer
    has one); the other columns are kept, the original text (if any) moves to `source_text`.

    >>> plain_records(Template(user="Q: {question}\\nA:", response=" {answer}"), [dict(question="1+1?", answer="2")],
    ...               tokenizer=None)[0]["text"]
    'Q: 1+1?\\nA: 2'
    """
    records = as_records(prompts)
    out = []
    for rec, r in zip(records, render_all(template, records, tokenizer)):
        row = dict(rec)
        if "text" in row:
            row["source_text"] = row.pop("text")
        out.append({"id": row.pop("id"), "text": r.prompt + (r.response or ""), **row})
    return out
