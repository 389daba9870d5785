import pytest

from servers.egg_rules import VariableRule, build_environment, validate_value

JAR = VariableRule(
    "SERVER_JARFILE", "Server Jar File", r"required|regex:/^([\w\d._-]+)(\.jar)$/", "server.jar"
)
VERSION = VariableRule("MINECRAFT_VERSION", "Minecraft Version", "nullable|string|max:20", "latest")
BUILD = VariableRule("BUILD_NUMBER", "Build Number", "required|string|max:20", "latest")
HIDDEN = VariableRule(
    "DL_PATH", "Download Path", "nullable|string", "", user_editable=False, user_viewable=False
)


@pytest.mark.parametrize(
    ("value", "rule", "errors"),
    [
        ("paper.jar", JAR, []),
        ("paper.zip", JAR, ["The Server Jar File variable field format is invalid."]),
        ("", JAR, ["The Server Jar File variable field is required."]),
        (None, BUILD, ["The Build Number variable field is required."]),
        (None, VERSION, []),
        (
            "x" * 21,
            VERSION,
            ["The Minecraft Version variable field must not be greater than 20 characters."],
        ),
        (7, VERSION, ["The Minecraft Version variable field must be a string."]),
        (
            "12",
            VariableRule("P", "Players", "required|integer|between:1,10"),
            ["The Players variable field must not be greater than 10."],
        ),
        (
            "abc",
            VariableRule("P", "Players", "required|integer"),
            ["The Players variable field must be an integer."],
        ),
        (
            "2",
            VariableRule("B", "Flag", "required|boolean"),
            ["The Flag variable field must be true or false."],
        ),
        ("1", VariableRule("B", "Flag", "required|boolean"), []),
        ("c", VariableRule("M", "Mode", "required|in:a,b"), ["The selected Mode is invalid."]),
        ("a|b", VariableRule("R", "Pipe", r"required|regex:/^a\|b$/"), []),
    ],
)
def test_validate_value_matches_panel_messages(value, rule, errors):
    assert validate_value(value, rule) == errors


def test_build_environment_layers_defaults_plan_and_customer_values():
    env, errors = build_environment(
        [JAR, VERSION, BUILD, HIDDEN],
        plan_values={"MINECRAFT_VERSION": "1.20.4"},
        customer_values={"SERVER_JARFILE": "paper.jar"},
    )
    assert errors == {}
    assert env == {
        "SERVER_JARFILE": "paper.jar",
        "MINECRAFT_VERSION": "1.20.4",
        "BUILD_NUMBER": "latest",
        "DL_PATH": "",
    }


def test_build_environment_refuses_hidden_and_unknown_variables():
    env, errors = build_environment(
        [JAR, HIDDEN], plan_values={}, customer_values={"DL_PATH": "http://x", "EXTRA": "1"}
    )
    assert errors == {
        "DL_PATH": ["Download Path cannot be changed."],
        "EXTRA": ["EXTRA is not a variable of this server type."],
    }
    assert env["DL_PATH"] == ""


@pytest.mark.parametrize(
    ("value", "ok"), [("0", True), ("1", True), ("true", False), ("false", False), ("yes", False)]
)
def test_boolean_accepts_what_the_panel_accepts(value, ok):
    rule = VariableRule("AUTO_UPDATE", "Auto Update", "required|boolean", "0")
    assert (validate_value(value, rule) == []) is ok
