//! Identity checks shared by the staff and patient flows: SMS one-time codes (`sms`), and ID
//! card OCR, face match and liveness through the hospital's `liveness` service (`vision`, the
//! client; `checks`, the steps and their evidence).

pub mod checks;
pub mod sms;
pub mod vision;
