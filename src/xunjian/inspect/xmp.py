"""The JPEG header walk and the XMP packet it carries (DJI's ``drone-dji:`` fields and others).

:func:`read_jpeg_header` reads the marker segments up to the first scan without decoding any
pixels, so the frame size is known before a decoder is trusted with the file (decompression
bombs). :func:`parse_xmp` parses a packet with defusedxml: DTDs, entity expansion and
external references are refused, the packet size is capped, and every failure is a reason,
never an exception.

May import: defusedxml and the standard library. Nothing from the package.
"""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import IO, Any

import defusedxml
import defusedxml.ElementTree as DET  # noqa: N814

__all__ = ["MAX_XMP_BYTES", "JpegHeader", "find_xmp_packet", "parse_xmp", "read_jpeg_header"]

MAX_XMP_BYTES = 256 * 1024
MAX_XMP_FIELDS = 2000
MAX_XMP_DEPTH = 64  # XMP structures nest a few levels; thousands would exhaust the stack
_XMP_SIGNATURE = b"http://ns.adobe.com/xap/1.0/\x00"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD})
_SOF_MARKERS |= {0xCE, 0xCF}
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF8": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"RIFF": "RIFF/WebP",
    b"BM": "BMP",
    b"%PDF": "PDF",
}


class NotAJpegError(ValueError):
    """The bytes are not a well-formed JPEG header; the message says what was found."""


@dataclass
class JpegHeader:
    """Frame size (as stored, before EXIF orientation) and the APP1 payloads."""

    width: int
    height: int
    app1: list[bytes] = field(default_factory=list)


def _describe(head: bytes) -> str:
    for signature, name in _SIGNATURES.items():
        if head.startswith(signature):
            return f"{name} data"
    if head[:1] in (b"{", b"<") or (head and all(32 <= b < 127 or b in (9, 10, 13) for b in head)):
        return "text"
    return f"unknown data starting {head[:8].hex()}"


def read_jpeg_header(fp: IO[bytes]) -> JpegHeader:
    """Walks the marker segments from SOI to SOS; raises NotAJpegError on anything else."""
    head = fp.read(2)
    if head != b"\xff\xd8":
        raise NotAJpegError(
            f"expected a JPEG (starts FF D8), found {_describe(head + fp.read(14))}"
        )
    size: tuple[int, int] | None = None
    app1: list[bytes] = []
    while True:
        byte = fp.read(1)
        if byte != b"\xff":
            raise NotAJpegError("corrupt JPEG header: expected a marker, found " + repr(byte))
        marker = fp.read(1)
        while marker == b"\xff":  # fill bytes
            marker = fp.read(1)
        if not marker:
            raise NotAJpegError("truncated JPEG header")
        code = marker[0]
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            continue  # markers without a length
        if code == 0xD9:
            raise NotAJpegError("JPEG ends before any image data")
        raw_length = fp.read(2)
        if len(raw_length) < 2:
            raise NotAJpegError("truncated JPEG header")
        (length,) = struct.unpack(">H", raw_length)
        if length < 2:
            raise NotAJpegError(f"corrupt JPEG segment length {length}")
        payload = fp.read(length - 2)
        if len(payload) < length - 2:
            raise NotAJpegError("truncated JPEG header")
        if code in _SOF_MARKERS and len(payload) >= 5:
            height, width = struct.unpack(">HH", payload[1:5])
            size = (width, height)
        elif code == 0xE1:
            app1.append(payload)
        elif code == 0xDA:
            if size is None:
                raise NotAJpegError("corrupt JPEG: image data before any frame header")
            return JpegHeader(width=size[0], height=size[1], app1=app1)


def find_xmp_packet(app1: list[bytes]) -> tuple[bytes | None, str | None]:
    """The ``<x:xmpmeta>…</x:xmpmeta>`` packet of the standard XMP segment, or a reason."""
    for payload in app1:
        if not payload.startswith(_XMP_SIGNATURE):
            continue
        body = payload[len(_XMP_SIGNATURE) :]
        end = body.find(b"</x:xmpmeta>")
        if body.find(b"<x:xmpmeta") < 0 or end < 0:
            return None, "xmp: segment without a complete <x:xmpmeta> packet"
        # From the first markup on, prolog included: a DOCTYPE hidden there must reach the
        # parser to be refused, not be cut off and turn into a puzzling "undefined entity".
        start = body.find(b"<")
        packet = body[start : end + len(b"</x:xmpmeta>")]
        if len(packet) > MAX_XMP_BYTES:
            return None, f"xmp: packet of {len(packet)} bytes exceeds {MAX_XMP_BYTES}; dropped"
        return packet, None
    return None, None


def parse_xmp(packet: bytes) -> tuple[dict[str, Any], str | None]:
    """Flattens an XMP packet to ``{"prefix:Name": value}``; returns ({}, reason) on failure.

    Attributes of every ``rdf:Description`` and its simple child elements become strings;
    ``rdf:Seq``/``Bag``/``Alt`` become lists of strings; structures become dicts.
    """
    if len(packet) > MAX_XMP_BYTES:
        return {}, f"xmp: packet of {len(packet)} bytes exceeds {MAX_XMP_BYTES}; dropped"
    prefixes: dict[str, str] = {}
    root: ET.Element | None = None
    try:
        for event, item in DET.iterparse(
            io.BytesIO(packet), events=("start-ns", "start"), forbid_dtd=True
        ):
            if event == "start-ns":
                prefix, uri = item
                prefixes.setdefault(uri, prefix)
            elif root is None:
                root = item
    except defusedxml.DefusedXmlException as exc:
        return {}, f"xmp: hostile XML refused ({type(exc).__name__}); XMP dropped"
    except ET.ParseError as exc:
        return {}, f"xmp: malformed XML ({exc}); XMP dropped"
    except (LookupError, ValueError) as exc:  # an encoding expat does not know
        return {}, f"xmp: malformed XML ({exc}); XMP dropped"
    if root is None:
        return {}, "xmp: empty packet; XMP dropped"
    if _depth(root) > MAX_XMP_DEPTH:
        return {}, f"xmp: elements nested deeper than {MAX_XMP_DEPTH} levels; XMP dropped"
    fields: dict[str, Any] = {}
    rdf_roots = [root] if root.tag == f"{{{_RDF}}}RDF" else list(root.iter(f"{{{_RDF}}}RDF"))
    for rdf in rdf_roots:
        for description in rdf.findall(f"{{{_RDF}}}Description"):
            _collect(description, prefixes, fields)
    if len(fields) > MAX_XMP_FIELDS:
        return {}, f"xmp: more than {MAX_XMP_FIELDS} fields; XMP dropped"
    return fields, None


def _depth(root: ET.Element) -> int:
    """How deep elements nest below ``root``, without recursion (stops past the limit)."""
    deepest, stack = 0, [(root, 0)]
    while stack and deepest <= MAX_XMP_DEPTH:
        element, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in element)
    return deepest


def _name(tag: str, prefixes: dict[str, str]) -> str:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return f"{prefixes.get(uri, uri)}:{local}"
    return tag


def _attributes(element: ET.Element, prefixes: dict[str, str]) -> dict[str, str]:
    rdf = f"{{{_RDF}}}"
    return {_name(k, prefixes): v for k, v in element.attrib.items() if not k.startswith(rdf)}


def _collect(element: ET.Element, prefixes: dict[str, str], into: dict[str, Any]) -> None:
    into.update(_attributes(element, prefixes))
    for child in element:
        if child.tag == f"{{{_RDF}}}Description":
            _collect(child, prefixes, into)
        else:
            into[_name(child.tag, prefixes)] = _value(child, prefixes)


def _value(element: ET.Element, prefixes: dict[str, str]) -> Any:
    children = list(element)
    if not children:
        if element.attrib.get(f"{{{_RDF}}}resource") is not None:
            return element.attrib[f"{{{_RDF}}}resource"]
        plain = _attributes(element, prefixes)
        if plain:
            return plain
        return (element.text or "").strip()
    container = children[0]
    if container.tag in (f"{{{_RDF}}}Seq", f"{{{_RDF}}}Bag", f"{{{_RDF}}}Alt"):
        return [_value(li, prefixes) for li in container]
    nested: dict[str, Any] = {}
    _collect(element, prefixes, nested)
    return nested
