//! Sans-io framing: bytes in, messages out, and back. (filled in by the codec work)
