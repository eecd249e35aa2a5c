import pytest
import typer

from gossamer.cli.remote import selector_arg
from gossamer.cli.resources import kind_arg, parse_timeout


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("2.5", 2.5)]
)
def test_timeout_accepts_durations_and_seconds(text: str, seconds: float) -> None:
    assert parse_timeout(text) == seconds


@pytest.mark.parametrize("text", ["soon", "0", "-1", "10 s", "1d"])
def test_timeout_refuses_the_rest_as_usage_errors(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_timeout(text)


def test_selectors_join_repeats_and_commas() -> None:
    assert selector_arg(["version=v2", "team=a, tier=web"]) == "version=v2,team=a,tier=web"
    assert selector_arg(None) is None
    assert selector_arg([" , "]) is None
    for bad in (["version"], ["=v2"], ["a=b,c"]):
        with pytest.raises(typer.BadParameter):
            selector_arg(bad)


@pytest.mark.parametrize("name", ["HTTPRoute", "httproute", "httproutes", "route", "HR"])
def test_kinds_by_any_of_their_names(name: str) -> None:
    assert kind_arg(name).plural == "httproutes"


def test_unknown_kind_is_a_usage_error_listing_known_kinds() -> None:
    with pytest.raises(typer.BadParameter) as info:
        kind_arg("gizmo")
    assert "trafficpolicies" in str(info.value)
