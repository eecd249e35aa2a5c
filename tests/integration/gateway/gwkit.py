"""Gateway integration kit: a header-echo app, certificates, and a raw HTTP(S) client that
reports the peer certificate (so tests can check which one SNI chose)."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httptools
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ECHO_APP = [sys.executable, str(Path(__file__).with_name("header_echo.py"))]


class CA:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway test CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, dns: str, cert_path: Path, key_path: Path) -> int:
        """A leaf for `dns` written to the two paths; returns its serial number."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        # Write to temporary names and rename: a reader never sees half a file.
        tmp_key, tmp_cert = key_path.with_suffix(".tmp-key"), cert_path.with_suffix(".tmp-crt")
        tmp_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        tmp_key.replace(key_path)
        tmp_cert.replace(cert_path)
        return serial

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.pem().decode())
        return ctx


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    serial: int | None  # the server certificate's serial (TLS only)

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class _Parser:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        self.done = True


class Client:
    """One keep-alive connection to a gateway listener."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None, sni: str | None = None):
        self.port, self.tls, self.sni = port, tls, sni
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def open(self) -> Client:
        self.conn = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=self.tls, server_hostname=self.sni if self.tls else None
        )
        return self

    def serial(self) -> int | None:
        if self.conn is None:
            return None
        sslobj = self.conn[1].get_extra_info("ssl_object")
        if sslobj is None:
            return None
        der = sslobj.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number

    async def get(
        self,
        host: str,
        path: str,
        headers: dict[str, str] | None = None,
        raw: bytes = b"",
        method: str = "GET",
    ) -> Answer:
        if self.conn is None:
            await self.open()
        assert self.conn is not None
        reader, writer = self.conn
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(raw or ("\r\n".join(lines) + "\r\n\r\n").encode())
        parser = _Parser()
        http = httptools.HttpResponseParser(parser)
        async with asyncio.timeout(10):
            while not parser.done:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("closed mid-response")
                http.feed_data(data)
        answer = Answer(http.get_status_code(), parser.headers, bytes(parser.body), self.serial())
        if parser.headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return answer

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None


async def get(port: int, host: str, path: str, **kw: Any) -> Answer:
    tls, sni = kw.pop("tls", None), kw.pop("sni", host)
    client = Client(port, tls, sni)
    try:
        return await client.get(host, path, **kw)
    finally:
        client.close()
