"""The only I/O in civic311: `AsyncClient` (the source), `Client` (generated from it), and the
pure set-up they share (`ClientBase`), the attempt loop and the transport helpers."""
