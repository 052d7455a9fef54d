"""sendEmail: payload validation, the template rule and sandboxed rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.job_types import email_templates
from shared.job_types.send_email import JOB_TYPE, SendEmailPayload
from shared.registry import JobTypeRegistry, PayloadContext, PayloadRuleError
from shared.settings import load_settings
from tests.unit.job_types.fields import payload_errors

VALID: dict[str, Any] = {
    "to": "ada@example.com",
    "subject": "Your reminder",
    "template": "reminder",
    "params": {"title": "Water the plants"},
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**VALID, **changes}


def _context(**settings: Any) -> PayloadContext:
    return PayloadContext(load_settings({}, **settings), is_admin=False)


def test_valid_payload_with_one_address_becomes_a_list() -> None:
    payload = SendEmailPayload.model_validate(VALID)
    assert payload.to == ["ada@example.com"]
    assert payload.params == {"title": "Water the plants"}


def test_a_list_of_addresses_is_kept_in_order_without_duplicates() -> None:
    payload = SendEmailPayload.model_validate(
        _with(to=["b@example.com", "a@example.org", "B@example.com"])
    )
    assert payload.to == ["b@example.com", "a@example.org"]


def test_params_default_to_empty() -> None:
    payload = SendEmailPayload.model_validate({k: v for k, v in VALID.items() if k != "params"})
    assert payload.params == {}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"to": []}, "to", "at least 1 item"),
        ({"to": [f"u{i}@example.com" for i in range(51)]}, "to", "at most 50 items"),
        ({"to": "not-an-address"}, "to[0]", "not a valid email address"),
        ({"to": 5}, "to", "valid list"),
        ({"subject": ""}, "subject", "at least 1 character"),
        ({"subject": "x" * 201}, "subject", "at most 200 characters"),
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject", "one line"),
        ({"subject": "nul\x00"}, "subject", "one line"),
        ({"subject": "next\x85line"}, "subject", "one line"),
        ({"subject": "c1\x9bcontrol"}, "subject", "one line"),
        ({"subject": "line\u2028separator"}, "subject", "one line"),
        ({"subject": "paragraph\u2029separator"}, "subject", "one line"),
        ({"subject": "   "}, "subject", "blank"),
        ({"template": "../etc/passwd"}, "template", "should match pattern"),
        ({"template": "Reminder"}, "template", "should match pattern"),
        ({"params": ["not", "an", "object"]}, "params", "valid dictionary"),
        ({"params": {"blob": "x" * 16_400}}, "params", "at most 16384 allowed"),
        ({"params": {"a": {"b": {"c": {"d": {"e": {"f": {}}}}}}}}, "params", "at most 6"),
        ({"bcc": "spy@example.com"}, "bcc", "Extra inputs are not permitted"),
    ],
)
def test_each_invalid_field_is_named(changes: dict[str, Any], field: str, message: str) -> None:
    errors = payload_errors(SendEmailPayload, _with(**changes))
    assert field in errors, errors
    assert message in errors[field]


def test_every_character_python_treats_as_a_line_break_is_refused_in_the_subject() -> None:
    # EmailMessage refuses a header with any of these, so each would fail every run.
    breaks = [chr(code) for code in range(0x110000) if len(f"a{chr(code)}b".splitlines()) > 1]
    assert {"\n", "\x85", "\u2028", "\u2029"} <= set(breaks)
    for char in breaks:
        errors = payload_errors(SendEmailPayload, _with(subject=f"a{char}b"))
        assert "one line" in errors.get("subject", ""), repr(char)


def test_errors_point_at_the_offending_list_item() -> None:
    to = ["a@example.com", "b@example.com", "c@example.com", "not an address", "e@example.com"]
    errors = payload_errors(SendEmailPayload, _with(to=to))
    assert list(errors) == ["to[3]"]


def test_missing_fields_are_named() -> None:
    assert set(payload_errors(SendEmailPayload, {})) == {"to", "subject", "template"}


def test_shipped_templates_are_available() -> None:
    names = email_templates.available_templates(None)
    assert {"reminder", "digest", "report-ready"} <= set(names)
    assert not any(name.startswith("_") for name in names)


def test_rule_accepts_a_shipped_template_that_renders() -> None:
    registry = JobTypeRegistry([JOB_TYPE])
    payload = registry.validate_payload("sendEmail", VALID, _context())
    assert isinstance(payload, SendEmailPayload)


def test_rule_rejects_an_unknown_template_listing_the_available_ones() -> None:
    with pytest.raises(PayloadRuleError) as error:
        JobTypeRegistry([JOB_TYPE]).validate_payload(
            "sendEmail", _with(template="nope"), _context()
        )
    assert error.value.field == "template"
    assert "unknown template 'nope'" in error.value.message
    assert "reminder" in error.value.message


def test_rule_rejects_params_the_template_cannot_render_with() -> None:
    with pytest.raises(PayloadRuleError) as error:
        JobTypeRegistry([JOB_TYPE]).validate_payload("sendEmail", _with(params={}), _context())
    assert error.value.field == "params"
    assert "'title' is undefined" in error.value.message


def test_html_is_escaped_and_text_is_verbatim() -> None:
    params = {"title": "<script>alert(1)</script> & co", "url": "javascript:alert(1)"}
    rendered = email_templates.render(None, "reminder", params)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in rendered.html
    assert "<script>" not in rendered.html
    assert 'href="#"' in rendered.html
    assert "Reminder: <script>alert(1)</script> & co" in rendered.text


def test_digest_renders_a_list_of_items() -> None:
    params = {
        "items": [{"title": "First", "url": "https://example.com/1"}, {"title": "Second"}],
        "intro": "This week",
    }
    rendered = email_templates.render(None, "digest", params)
    assert "- First" in rendered.text and "https://example.com/1" in rendered.text
    assert '<a href="https://example.com/1">First</a>' in rendered.html
    assert "Second" in rendered.html


def test_the_sandbox_blocks_attribute_tricks(tmp_path: Path) -> None:
    (tmp_path / "evil.txt.j2").write_text("{{ title.__class__.__mro__ }}")
    (tmp_path / "evil.html.j2").write_text("x")
    with pytest.raises(email_templates.TemplateRenderError, match=r"template 'evil': .*unsafe"):
        email_templates.render(str(tmp_path), "evil", {"title": "x"})


def test_params_are_data_not_template_code() -> None:
    rendered = email_templates.render(None, "reminder", {"title": "{{ 7 * 7 }}"})
    assert "{{ 7 * 7 }}" in rendered.text
    assert "49" not in rendered.text


def test_operator_templates_are_offered_and_may_override_shipped_ones(tmp_path: Path) -> None:
    (tmp_path / "welcome.txt.j2").write_text("Hello {{ name }}")
    (tmp_path / "welcome.html.j2").write_text("<p>Hello {{ name }}</p>")
    (tmp_path / "reminder.txt.j2").write_text("Custom {{ title }}")
    (tmp_path / "half.txt.j2").write_text("only text")
    names = email_templates.available_templates(str(tmp_path))
    assert "welcome" in names and "reminder" in names and "half" not in names
    assert email_templates.render(str(tmp_path), "reminder", {"title": "T"}).text == "Custom T"
    context = _context(templates_dir=str(tmp_path))
    payload = _with(template="welcome", params={"name": "Ada"})
    JobTypeRegistry([JOB_TYPE]).validate_payload("sendEmail", payload, context)


def test_a_missing_operator_folder_leaves_the_shipped_templates() -> None:
    assert "reminder" in email_templates.available_templates("/nonexistent/templates")
