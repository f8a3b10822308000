"""Jobs: OCR of large batches submitted, followed and fetched later, with state in a database."""
