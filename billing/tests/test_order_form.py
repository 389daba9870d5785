"""The order form built from the egg's variable rules, the review page and its "Change", and
the plan cards: through real HTTP requests on the demo catalog (the simulator's egg fixtures)."""

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from billing.forms.egg_fields import is_secret, readable_rule, variable_field
from billing.models import Order
from servers.egg_rules import VariableRule
from servers.models import Node
from tests.factories import CouponFactory, EggFactory, EggVariableFactory, PlanFactory

pytestmark = pytest.mark.django_db

SECRET = "ghp_supersecret123"
CUSTOM_EGG = 50


class _Controls(HTMLParser):
    """Every form control of a page: name -> list of controls (tag, attributes, options)."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: dict[str, list[dict]] = {}
        self.forms: list[dict] = []
        self._select: dict | None = None
        self._option: dict | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "inputs": []})
        if tag in ("input", "select", "textarea", "button") and "name" in attrs:
            control = {"tag": tag, "attrs": attrs, "options": []}
            self.controls.setdefault(attrs["name"], []).append(control)
            if self.forms:
                self.forms[-1]["inputs"].append(control)
            if tag == "select":
                self._select = control
        if tag == "option" and self._select is not None:
            self._option = {"value": attrs.get("value"), "selected": "selected" in attrs}
            self._select["options"].append(self._option)

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None

    def handle_data(self, data):
        self.text.append(data)


def controls(html: str) -> _Controls:
    parser = _Controls()
    parser.feed(html)
    return parser


def one(page: _Controls, name: str) -> dict:
    (control,) = page.controls[name]
    return control


def form_data(form: dict) -> dict[str, list[str]]:
    """What a browser sends for a form of hidden inputs (and the button's name)."""
    data: dict[str, list[str]] = {}
    for control in form["inputs"]:
        attrs = control["attrs"]
        data.setdefault(attrs["name"], []).append(attrs.get("value", ""))
    return data


@pytest.fixture
def custom_plan(catalog):
    """A plan on an egg with every kind of variable (rules as eggs write them)."""
    egg = EggFactory(panel_id=CUSTOM_EGG, name="Vanilla Plus")
    for env, name, rules, default, description in [
        ("ENABLE_PVP", "Enable PvP", "required|boolean", "1", "Players can hurt each other."),
        ("ONLINE_MODE", "Online Mode", "required|string|in:true,false", "false", ""),
        ("DIFFICULTY", "Difficulty", "required|string|in:peaceful,easy,normal,hard", "normal", ""),
        ("MAX_PLAYERS", "Max Players", "required|integer|between:1,100", "20", ""),
        ("RCON_PASSWORD", "RCON Password", "nullable|string|max:64", "preset-secret-99", ""),
        (
            "SERVER_JARFILE",
            "Server Jar File",
            r"required|regex:/^([\w\d._-]+)(\.jar)$/",
            "server.jar",
            "The name of the server jar file to run the server with.",
        ),
    ]:
        EggVariableFactory(
            egg=egg,
            env_variable=env,
            name=name,
            rules=rules,
            default_value=default,
            description=description,
        )
    return PlanFactory(slug="custom", name="Custom", egg_id=CUSTOM_EGG)


def configure(client, slug, data=None):
    url = reverse("order-configure", args=[slug])
    return client.post(url, data) if data is not None else client.get(url)


def test_each_rule_gets_its_widget(client, customer, custom_plan):
    client.force_login(customer)
    html = configure(client, "custom").content.decode()
    page = controls(html)

    pvp = one(page, "var_ENABLE_PVP")["attrs"]
    assert (pvp["type"], pvp["value"], "checked" in pvp) == ("checkbox", "1", True)
    online = one(page, "var_ONLINE_MODE")["attrs"]
    assert (online["type"], online["value"], "checked" in online) == ("checkbox", "true", False)
    assert "required" not in online  # unticked is an answer, not a missing one

    difficulty = one(page, "var_DIFFICULTY")
    assert difficulty["tag"] == "select"
    assert [o["value"] for o in difficulty["options"]] == ["peaceful", "easy", "normal", "hard"]
    assert [o["value"] for o in difficulty["options"] if o["selected"]] == ["normal"]

    players = one(page, "var_MAX_PLAYERS")["attrs"]
    assert {k: players.get(k) for k in ("type", "min", "max", "step", "value")} == {
        "type": "number",
        "min": "1",
        "max": "100",
        "step": "1",
        "value": "20",
    }
    assert "required" in players

    rcon = one(page, "var_RCON_PASSWORD")["attrs"]
    assert rcon["type"] == "password"
    assert "value" not in rcon
    assert "preset-secret-99" not in html  # a preset secret never reaches the page

    jar = one(page, "var_SERVER_JARFILE")["attrs"]
    assert (jar["type"], jar["value"]) == ("text", "server.jar")
    assert "required" in jar


def test_help_text_is_readable_not_the_raw_rule(client, customer, custom_plan):
    client.force_login(customer)
    html = configure(client, "custom").content.decode()

    for raw in ("required|", "regex:", "between:"):
        assert raw not in html
    assert (
        "The name of the server jar file to run the server with. Required. "
        "A file name ending in .jar. Default: server.jar." in html
    )
    assert "Required. A whole number from 1 to 100. Default: 20." in html
    assert "Optional. Up to 64 characters. Kept private: it is masked on the review page." in html


@pytest.mark.parametrize(
    ("rules", "kind", "expected"),
    [
        ("nullable|string|max:20", "text", "Optional. Up to 20 characters. Default: x."),
        ("required|numeric|min:0.5", "number", "Required. A number of at least 0.5. Default: x."),
        (
            "required|alpha_dash|between:3,16",
            "text",
            "Required. 3 to 16 characters. "
            "Letters, digits, dashes and underscores only. Default: x.",
        ),
        (
            "required|regex:/^[a-z]+$/",
            "text",
            "Required. It must be in the format this server type expects. Default: x.",
        ),
        (
            "nullable|url",
            "text",
            "Optional. A web address starting with http:// or https://. Default: x.",
        ),
    ],
)
def test_readable_rule_sentences(rules, kind, expected):
    assert readable_rule(VariableRule("V", "V", rules, "x"), kind=kind) == expected


@pytest.mark.parametrize(
    ("env", "name", "secret"),
    [
        ("ACCESS_TOKEN", "Git Access Token", True),
        ("RCON_PASS", "Rcon", True),
        ("API_KEY", "Api", True),
        ("X", "Bot Secret", True),
        ("KEYBOARD_LAYOUT", "Keyboard layout", False),
        ("MONKEY_MODE", "Monkey", False),
        ("USERNAME", "Git Username", False),
    ],
)
def test_secret_detection(env, name, secret):
    assert is_secret(VariableRule(env, name, "nullable|string")) is secret


@pytest.mark.parametrize(
    ("rules", "checked", "unchecked"),
    [
        ("required|boolean", "1", "0"),
        ("required|in:true,false", "true", "false"),
        ("required|string|in:0,1", "1", "0"),
        ("required|in:FALSE,TRUE", "TRUE", "FALSE"),
    ],
)
def test_checkbox_sends_back_exactly_the_values_the_rule_accepts(rules, checked, unchecked):
    field = variable_field(VariableRule("B", "Flag", rules), initial=unchecked).field
    widget = field.widget
    assert widget.value_from_datadict({"b": checked}, {}, "b") == checked
    assert widget.value_from_datadict({}, {}, "b") == unchecked
    assert (field.clean(checked), field.clean(unchecked)) == (checked, unchecked)
    assert "checked" in widget.render("b", checked)
    assert "checked" not in widget.render("b", unchecked)


def test_boolean_round_trip_reaches_the_server_environment(client, customer, custom_plan):
    client.force_login(customer)
    choices = {
        "billing_cycle": "monthly",
        "location": "eu",
        "var_ONLINE_MODE": "true",  # ticked; ENABLE_PVP left unticked (sent as nothing)
        "var_DIFFICULTY": "hard",
        "var_MAX_PLAYERS": "42",
        "var_RCON_PASSWORD": SECRET,
        "var_SERVER_JARFILE": "paper.jar",
    }
    review = configure(client, "custom", choices)
    assert "Review your order" in review.content.decode()
    place = next(f for f in controls(review.content.decode()).forms if "place" in f["action"])

    response = client.post(place["action"], form_data(place))

    assert response.status_code == 302
    environment = Order.objects.get().deployment.spec["environment"]
    assert {k: environment[k] for k in ("ENABLE_PVP", "ONLINE_MODE", "DIFFICULTY")} == {
        "ENABLE_PVP": "0",
        "ONLINE_MODE": "true",
        "DIFFICULTY": "hard",
    }
    assert environment["MAX_PLAYERS"] == "42"
    assert environment["RCON_PASSWORD"] == SECRET


def test_an_emptied_required_field_is_an_error_not_the_default(client, customer, catalog):
    client.force_login(customer)
    response = configure(
        client,
        "bronze",
        {
            "billing_cycle": "monthly",
            "location": "eu",
            "var_SERVER_JARFILE": "paper.jar",
            "var_BUILD_NUMBER": "",
            "var_MINECRAFT_VERSION": "",  # optional: empty is a fine answer
        },
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Review your order" not in html
    fields = html.split('<div class="field')[1:]  # one chunk per field wrapper
    errors = [chunk for chunk in fields if "has-error" in chunk.split(">", 1)[0]]
    assert len(errors) == 1
    assert 'name="var_BUILD_NUMBER"' in errors[0]
    assert "This field is required." in errors[0]
    assert Order.objects.count() == 0


def test_no_addons_field_when_the_plan_has_none(client, customer, catalog):
    client.force_login(customer)
    bronze = configure(client, "bronze").content.decode()
    starter = controls(configure(client, "starter").content.decode())

    assert "Add-ons" not in bronze
    assert 'name="addons"' not in bronze
    assert [c["attrs"]["value"] for c in starter.controls["addons"]] == ["private-instance"]


def test_cycle_choices_show_price_and_setup_fee(client, customer, catalog):
    client.force_login(customer)
    html = configure(client, "bronze").content.decode()

    assert "Monthly: 4.00 USD + 1.50 USD setup fee" in html
    assert "Quarterly: 11.40 USD, no setup fee" in html
    assert "Annual: 40.80 USD, no setup fee" in html


def _starter_choices():
    return {
        "billing_cycle": "quarterly",
        "location": "us",
        "addons": ["private-instance"],
        "coupon": "SAVE10",
        "server_name": "My Bot",
        "var_GIT_ADDRESS": "https://github.com/example/bot.git",
        "var_BRANCH": "",
        "var_USER_UPLOAD": "1",  # ticked; AUTO_UPDATE unticked
        "var_NODE_PACKAGES": "discord.js",
        "var_USERNAME": "budi",
        "var_ACCESS_TOKEN": SECRET,
        "var_UNNODE_PACKAGES": "",
        "var_MAIN_FILE": "bot.js",
        "var_NODE_ARGS": "--trace-warnings",
    }


def test_review_shows_every_choice_with_secrets_masked(client, customer, catalog):
    CouponFactory(code="SAVE10")
    client.force_login(customer)

    response = configure(client, "starter", _starter_choices())

    html = response.content.decode()
    assert "Review your order" in html
    rows = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", html.split('class="order-choices"')[1]))
    assert rows == {
        "Add-ons": "Private Instance",
        "Coupon code": "SAVE10",
        "Git Repo Address": "https://github.com/example/bot.git",
        "Install Branch": "(empty)",
        "User Uploaded Files": "Yes",
        "Auto Update": "No",
        "Additional Node packages": "discord.js",
        "Git Username": "budi",
        "Git Access Token": "\u2022" * 8,
        "Uninstall Node packages": "(empty)",
        "Main file": "bot.js",
        "Additional Arguments.": "--trace-warnings",
    }
    for shown in ("Quarterly", "United States", "My Bot"):
        assert shown in html
    # The secret is only in the two POST forms' hidden inputs (place, change), never shown.
    hidden = re.findall(r'<input type="hidden" name="var_ACCESS_TOKEN" value="([^"]*)">', html)
    assert hidden == [SECRET, SECRET]
    assert SECRET not in re.sub(r"<input [^>]*>", "", html)
    assert "no-store" in response["Cache-Control"]
    assert all(form["action"].count("?") == 0 for form in controls(html).forms)


def test_change_on_the_review_keeps_every_choice(client, customer, catalog):
    CouponFactory(code="SAVE10")
    client.force_login(customer)
    review = controls(configure(client, "starter", _starter_choices()).content.decode())
    (change,) = [
        f for f in review.forms if f["action"] == reverse("order-configure", args=["starter"])
    ]
    data = form_data(change)
    assert data["change"] == ["1"]

    response = client.post(change["action"], data)

    html = response.content.decode()
    assert "Configure your Starter server" in html
    assert "has-error" not in html
    page = controls(html)
    selected = lambda name: [o["value"] for o in one(page, name)["options"] if o["selected"]]  # noqa: E731
    assert selected("billing_cycle") == ["quarterly"]
    assert selected("location") == ["us"]
    assert "checked" in one(page, "addons")["attrs"]
    values = {
        name: one(page, name)["attrs"].get("value")
        for name in (
            "coupon",
            "server_name",
            "var_GIT_ADDRESS",
            "var_NODE_PACKAGES",
            "var_USERNAME",
            "var_MAIN_FILE",
            "var_NODE_ARGS",
            "var_ACCESS_TOKEN",
        )
    }
    assert values == {
        "coupon": "SAVE10",
        "server_name": "My Bot",
        "var_GIT_ADDRESS": "https://github.com/example/bot.git",
        "var_NODE_PACKAGES": "discord.js",
        "var_USERNAME": "budi",
        "var_MAIN_FILE": "bot.js",
        "var_NODE_ARGS": "--trace-warnings",
        "var_ACCESS_TOKEN": SECRET,  # kept (in the answer to this POST only)
    }
    assert one(page, "var_ACCESS_TOKEN")["attrs"]["type"] == "password"
    assert "checked" in one(page, "var_USER_UPLOAD")["attrs"]
    assert "checked" not in one(page, "var_AUTO_UPDATE")["attrs"]
    assert one(page, "var_BRANCH")["attrs"].get("value", "") == ""
    assert Order.objects.count() == 0

    # Sent again unchanged, the form gives the same review.
    again = configure(client, "starter", {k: v for k, v in data.items() if k != "change"})
    assert "Review your order" in again.content.decode()


def _card(html: str, name: str) -> str:
    return next(card for card in html.split("<article")[1:] if f"<h2>{name}" in card)


def test_plan_cards_show_every_cycle_price_and_the_setup_fee(client, catalog):
    card = _card(client.get(reverse("plan-list")).content.decode(), "Bronze")

    rows = re.findall(
        r'<tr class="price-(\w+)"><td>.*?</td>\s*<td class="num">(.*?)</td>\s*'
        r'<td class="num">(.*?)</td></tr>',
        card,
    )
    assert rows == [
        ("monthly", "4.00 USD", "1.50 USD"),
        ("quarterly", "11.40 USD", "None"),
        ("semiannual", "21.60 USD", "None"),
        ("annual", "40.80 USD", "None"),
    ]


def test_plan_cards_say_sold_out_per_location_and_for_the_whole_plan(client, catalog):
    Node.objects.filter(location__short_code="eu").update(maintenance_mode=True)
    card = _card(client.get(reverse("plan-list")).content.decode(), "Bronze")
    assert '<span class="location sold-out">Europe (sold out)</span>' in card
    assert '<span class="location">United States</span>' in card
    assert 'href="/plans/bronze/order/"' in card

    Node.objects.update(maintenance_mode=True)
    card = _card(client.get(reverse("plan-list")).content.decode(), "Bronze")
    assert "Sold out</span></h2>" in card
    assert "Sold out everywhere right now" in card
    assert 'href="/plans/bronze/order/"' not in card
