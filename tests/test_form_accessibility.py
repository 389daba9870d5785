"""templates/_form.html on the real forms: every input has a label, help text and errors are tied
to their input with aria-describedby (ids that exist and hold that text), an input with errors is
aria-invalid, required inputs are marked, checkboxes come input first then label, and groups of
checkboxes or radios are a fieldset with a legend.

The pages are parsed with the standard library's HTML parser (no markup assumptions beyond HTML).
"""

from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
CONTROLS = {"input", "select", "textarea"}
NOT_LABELLED = {"hidden", "submit", "button", "reset", "image"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    ancestors: list["Element"]
    text: list[str] = field(default_factory=list)
    children: list["Element"] = field(default_factory=list)

    @property
    def content(self) -> str:
        return " ".join(" ".join(self.text).split())


class Page(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[Element] = []
        self.elements: list[Element] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, list(self.stack))
        if self.stack:
            self.stack[-1].children.append(element)
        self.elements.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        for element in self.stack:
            element.text.append(data)

    def by_id(self, id_: str) -> Element | None:
        matches = [e for e in self.elements if e.attrs.get("id") == id_]
        assert len(matches) <= 1, f"id {id_!r} is used {len(matches)} times"
        return matches[0] if matches else None

    def controls(self) -> list[Element]:
        """The form controls inside <main> (the header and footer have their own forms)."""
        return [
            e
            for e in self.elements
            if e.tag in CONTROLS
            and e.attrs.get("type", "text") not in NOT_LABELLED
            and any(a.tag == "main" for a in e.ancestors)
        ]

    def label_for(self, control: Element) -> Element | None:
        id_ = control.attrs.get("id")
        for element in self.elements:
            if element.tag == "label" and id_ and element.attrs.get("for") == id_:
                return element
        return next((a for a in reversed(control.ancestors) if a.tag == "label"), None)


def assert_accessible(html: str, *, errors: dict[str, str] | None = None) -> Page:
    """Every check of the module docstring; `errors` maps a control's name to an error text that
    must be shown for it (and only controls named there may be aria-invalid)."""
    page = Page(html)
    controls = page.controls()
    assert controls, "no form controls found"
    errors = errors or {}
    invalid_seen: set[str] = set()
    for control in controls:
        name = control.attrs.get("name", "")
        label = page.label_for(control)
        assert label is not None, f"{name}: no label"
        assert label.content, f"{name}: empty label"
        if control.attrs.get("type") == "checkbox" and label not in control.ancestors:
            # label after input: the input comes first in the same field container
            container = control.ancestors[-1]
            assert container.children.index(control) < container.children.index(label), name
        described = control.attrs.get("aria-describedby", "").split()
        group = next((a for a in reversed(control.ancestors) if a.tag == "fieldset"), None)
        if group is not None:
            legend = next((c for c in group.children if c.tag == "legend"), None)
            assert legend is not None, f"{name}: fieldset without legend"
            assert legend.content, f"{name}: empty legend"
            described += group.attrs.get("aria-describedby", "").split()
        for id_ in described:
            target = page.by_id(id_)
            assert target is not None, f"{name}: aria-describedby points at missing #{id_}"
            assert target.content, f"{name}: #{id_} is empty"
        if "required" in control.attrs:
            owner = legend.content if group is not None else label.content
            assert "(required)" in owner, f"{name}: required but not marked"
        if name in errors:
            assert control.attrs.get("aria-invalid") == "true", f"{name}: not aria-invalid"
            texts = [page.by_id(i).content for i in described]
            assert any(errors[name] in text for text in texts), (name, texts)
            invalid_seen.add(name)
        else:
            assert "aria-invalid" not in control.attrs, f"{name}: aria-invalid without error"
    assert invalid_seen == set(errors), f"errors expected on {set(errors) - invalid_seen}"
    return page


@pytest.mark.django_db
def test_signup_form(client, settings):
    settings.WHATSAPP_ENABLED = True  # its fields carry the help text and the checkbox
    page = assert_accessible(client.get("/accounts/signup/").content.decode())
    email = page.by_id("id_email")
    assert email is not None
    assert "required" in email.attrs
    full_name = page.by_id("id_full_name")
    assert full_name is not None
    assert "required" not in full_name.attrs
    # help text is tied to its input
    assert page.by_id("id_whatsapp_number").attrs["aria-describedby"] == (
        "id_whatsapp_number_helptext"
    )
    assert "country code" in page.by_id("id_whatsapp_number_helptext").content

    response = client.post(
        "/accounts/signup/",
        {
            "email": "not-an-address",
            "password": "a-long-password-1",
            "password_again": "another-password-2",
            "preferred_language": "en",
        },
    )
    assert response.status_code == 200
    page = assert_accessible(
        response.content.decode(),
        errors={
            "email": "Enter a valid email address.",
            "password_again": "The two passwords differ.",
        },
    )
    # the checkbox is rendered input first, then its label
    consent = page.by_id("id_whatsapp_consent")
    assert consent is not None
    assert consent.attrs["type"] == "checkbox"


@pytest.mark.django_db
def test_login_form(client, customer):
    assert_accessible(client.get("/accounts/login/").content.decode())
    response = client.post("/accounts/login/", {"username": "alice@example.com", "password": ""})
    assert response.status_code == 200
    assert_accessible(response.content.decode(), errors={"password": "This field is required."})


@pytest.mark.django_db
def test_profile_form_groups_are_fieldsets(client, customer, settings):
    settings.WHATSAPP_ENABLED = True
    client.force_login(customer)
    response = client.get("/accounts/profile/")
    page = assert_accessible(response.content.decode())
    groups = [e for e in page.elements if e.tag == "fieldset"]
    channel_boxes = [c for c in page.controls() if c.attrs.get("name", "").startswith("channels_")]
    assert channel_boxes, "the profile shows per-message channel checkboxes"
    for box in channel_boxes:
        assert any(g in box.ancestors for g in groups), box.attrs["name"]

    response = client.post(
        "/accounts/profile/", {"preferred_language": "xx", "whatsapp_number": ""}
    )
    assert response.status_code == 200
    assert_accessible(
        response.content.decode(), errors={"preferred_language": "Select a valid choice."}
    )


@pytest.mark.django_db
def test_order_configure_form(client, customer, catalog):
    client.force_login(customer)
    response = client.get("/plans/bronze/order/")
    assert response.status_code == 200
    page = assert_accessible(response.content.decode())
    assert page.by_id("id_billing_cycle") is not None

    response = client.post(
        "/plans/bronze/order/", {"billing_cycle": "fortnightly", "location": "eu"}
    )
    assert response.status_code == 200
    assert_accessible(response.content.decode(), errors={"billing_cycle": "Select a valid choice."})


def test_checks_catch_a_missing_label_and_a_dangling_reference():
    """The checker itself fails on the defects it looks for."""
    with pytest.raises(AssertionError, match="no label"):
        assert_accessible('<main><input type="text" name="a" id="id_a"></main>')
    with pytest.raises(AssertionError, match="missing #nope"):
        assert_accessible(
            '<main><label for="id_a">A</label>'
            '<input type="text" name="a" id="id_a" aria-describedby="nope"></main>'
        )
    with pytest.raises(AssertionError, match="not aria-invalid"):
        assert_accessible(
            '<main><label for="id_a">A</label><input name="a" id="id_a" '
            'aria-describedby="id_a_error"><p id="id_a_error">Bad</p></main>',
            errors={"a": "Bad"},
        )
