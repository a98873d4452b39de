//! Share sealing (TODO).
