"""HTTP/1.1 framing over httptools: parsing, strictness checks, re-framing. No routing here."""
