package llm

// sseBuffer is the read buffer of one stream. 4 KiB holds a typical chunk
// (about 300 bytes) many times over, so a thousand concurrent streams cost
// 4 MiB of buffers rather than 64.
const sseBuffer = 4 << 10
