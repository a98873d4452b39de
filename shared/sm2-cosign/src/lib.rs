//! Two-party SM2 co-signing (GB/T 32918.2): the doctor's key exists only as a phone share and a
//! server share. Built under issue 3.
#![forbid(unsafe_code)]
