"""Named accounts: people, their roles and key hashes (store), and resolving a key into a caller (directory)."""
