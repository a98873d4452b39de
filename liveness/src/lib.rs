//! Identity verification: ID-card OCR, face match and active liveness as a local service, so the
//! signing server does not link OpenCV. Built under issue 10.
#![forbid(unsafe_code)]
