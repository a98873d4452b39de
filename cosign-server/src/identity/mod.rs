//! Identity checks shared by the staff and patient flows: SMS one-time codes (`sms`).

pub mod sms;
