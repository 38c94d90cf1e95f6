"""Where the browser front sends a browser: 10320/loc before URL, the first usable location, never a
script or a relative path."""

from __future__ import annotations

from registry.locations import MAX_LOC_BYTES, locations, redirect_target, usable_url
from registry.model import HandleValue


def value(index: int, type_: str, data: str | bytes) -> HandleValue:
    return HandleValue(index, type_, data.encode() if isinstance(data, str) else data)


LOC = """<locations chooseby="locatt,country,weighted">
  <location id="0" href="https://mirror.example.org/SN-1" weight="0" />
  <location id="1" href="javascript:alert(1)" weight="1" />
  <location id="2" href="https://products.example.com/SN-1" weight="1" />
  <location id="3" href="https://second.example.com/SN-1" />
</locations>"""


def test_the_url_value_with_the_lowest_index():
    values = [value(7, "URL", "https://b.example/7"), value(2, "url", "https://a.example/2"), value(1, "EMAIL", "x@y")]
    assert redirect_target(values) == "https://a.example/2"


def test_an_unusable_url_value_is_passed_over():
    values = [value(1, "URL", "javascript:alert(1)"), value(2, "URL", "/relative"), value(3, "URL", "https://ok.example/3")]
    assert redirect_target(values) == "https://ok.example/3"
    assert redirect_target([value(1, "URL", "not a url"), value(2, "MODEL", "x")]) is None


def test_10320_loc_comes_first_and_its_first_usable_href_wins():
    values = [value(1, "URL", "https://url.example/1"), value(2, "10320/loc", LOC)]
    assert redirect_target(values) == "https://products.example.com/SN-1"
    assert locations(LOC.encode()) == ["https://products.example.com/SN-1", "https://second.example.com/SN-1",
                                       "https://mirror.example.org/SN-1"]  # weight 0 last, the script never


def test_a_10320_loc_that_is_not_the_xml_falls_back_to_the_url():
    for broken in ("<locations><location href=", "plain text", "<locations/>", "<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"):
        assert redirect_target([value(1, "10320/LOC", broken), value(2, "URL", "https://url.example/2")]) == "https://url.example/2"
    assert locations(b"<locations>" + b" " * MAX_LOC_BYTES + b"</locations>") == []


def test_an_entity_expansion_bomb_is_refused_by_the_parser():
    bomb = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            + "".join(f'<!ENTITY {n} "{("&" + p + ";") * 10}">' for p, n in zip("abcdefgh", "bcdefghi"))
            + ']><locations><location href="https://x.example/&i;"/></locations>')
    assert locations(bomb.encode()) == []


def test_usable_urls():
    assert usable_url(" https://a.example/x?y=1 ") == "https://a.example/x?y=1"
    for bad in ("ftp://a.example/x", "https:///nohost", "https://a.example/a b", "https://a.example/\r\nSet-Cookie: x", "", "//a.example"):
        assert usable_url(bad) is None, bad
