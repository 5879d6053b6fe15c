"""Mail formats and protocols: parsing, Message-IDs, IMAP, SMTP, composing."""
