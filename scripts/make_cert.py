"""Make a self-signed certificate so a lab can serve FER Studio over https (README, "Share it").

Browsers allow the webcam only on https or localhost. This writes certs/fer-studio.crt and
certs/fer-studio.key (or into --out), valid for the names and addresses given (default: this machine's
name and addresses, localhost and 127.0.0.1), and never over existing files. Then:

    python scripts/make_cert.py [NAME_OR_ADDRESS ...]
    streamlit run app.py --server.address 0.0.0.0 \\
        --server.sslCertFile certs/fer-studio.crt --server.sslKeyFile certs/fer-studio.key

Each browser asks once to trust the certificate (it is signed by nobody it knows).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAYS = 825  # The longest validity browsers accept for a certificate they are told to trust.


def machine_names() -> list[str]:
    """This machine's name, its addresses, localhost and 127.0.0.1."""
    names = [socket.gethostname(), "localhost", "127.0.0.1"]
    try:
        names += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)]
    except OSError:
        pass  # No resolvable name: the defaults still serve this machine.
    try:
        # The address other machines reach this one by: the one a route out would leave from (a UDP
        # "connection" sends nothing).
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.254.254.254", 9))
            names.append(probe.getsockname()[0])
    except OSError:
        pass  # No network at all: localhost only.
    return [name for name in dict.fromkeys(names) if not name.startswith("127.") or name == "127.0.0.1"]


def make_certificate(names: list[str], folder: Path) -> tuple[Path, Path]:
    """Write `folder`/fer-studio.crt and .key for `names`; FileExistsError when either exists."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = folder / "fer-studio.crt", folder / "fer-studio.key"
    for path in (cert_path, key_path):
        if path.exists():
            raise FileExistsError(f"{path} already exists; move it away first (this never writes over a file)")
    entries = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{names[0]} (FER Studio)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=DAYS))
                   .add_extension(x509.SubjectAlternativeName(entries), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    with os.fdopen(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(key_bytes)  # Readable by its owner only, and created only if the name is free.
    with os.fdopen(os.open(cert_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as out:
        out.write(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="host names and addresses the lab opens the app by "
                                                 "(default: this machine's, localhost and 127.0.0.1)")
    parser.add_argument("--out", type=Path, default=ROOT / "certs", help="folder for the two files (default: certs/)")
    args = parser.parse_args(argv)
    try:
        cert, key = make_certificate(args.names or machine_names(), args.out)
    except FileExistsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {cert} and {key}")
    print(f"serve: streamlit run app.py --server.address 0.0.0.0 --server.sslCertFile {cert} "
          f"--server.sslKeyFile {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
