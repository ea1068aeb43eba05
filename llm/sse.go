package llm

// sseBuffer is the size a stream's read buffer (the sse.Reader's) starts
// at. 1 KiB holds a typical chunk (about 300 bytes) three times over, so a
// thousand concurrent streams cost 1 MiB of these buffers rather than 4
// (with the connections' own, connBuffer, 3 MiB rather than 12). The
// reader grows the buffer for a longer line, up to sse.MaxLine, and up to
// 16 KiB for a stream that arrives faster than it is read, as a paced one
// (WithPacing) does: each paced read then takes what waited, not 1 KiB of
// it.
const sseBuffer = 1 << 10
