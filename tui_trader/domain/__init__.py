"""Domain layer: pure models and maths. No I/O, no asyncio, no clock reads (time is an argument)."""
