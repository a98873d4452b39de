//! Share refresh (TODO).
