"""Chinese text: normalisation, lexical and pinyin vectors, the glossary, masking personal data."""
