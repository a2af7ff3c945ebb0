"""The wire: the MEGA API over HTTP, retries, redaction, encodings, links, raw RSA."""
