//! What a resident ID card says, and the consistency checks on it: the number's MOD 11-2 check
//! character and birth date (shared with the patient pages: `cosign_proto`), and that the
//! number agrees with the printed birth date and sex (GB 11643 §5: digits 7–14 are the birth
//! date, digit 17 is odd for men and even for women).

use cosign_proto::v1::patient::{IdNumberError, validate_id_number};
use serde::{Deserialize, Serialize};

/// Sex as printed (性别).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// 男.
    Male,
    /// 女.
    Female,
}

impl Sex {
    /// As printed on the card.
    pub fn as_zh(self) -> &'static str {
        match self {
            Self::Male => "男",
            Self::Female => "女",
        }
    }
}

/// The front side (人像面).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardFront {
    /// 姓名.
    pub name: String,
    /// 性别.
    pub sex: Sex,
    /// 民族, without the word 族.
    pub ethnicity: String,
    /// 出生: year, month, day.
    pub birth: (u32, u32, u32),
    /// 住址, lines joined.
    pub address: String,
    /// 公民身份号码.
    pub number: String,
}

/// The back side (国徽面).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardBack {
    /// 签发机关.
    pub authority: String,
    /// 有效期限, as printed: `2015.03.07-2035.03.07` or `2015.03.07-长期`.
    pub validity: String,
}

/// Why the fields of a card do not agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Inconsistency {
    /// The number itself is invalid (length, characters, date, check character).
    NumberInvalid,
    /// The number's birth date differs from the printed one.
    BirthDateMismatch,
    /// The number's sex digit differs from the printed sex.
    SexMismatch,
}

impl Inconsistency {
    /// Chinese text.
    pub fn message_zh(self) -> &'static str {
        match self {
            Self::NumberInvalid => "身份证号码无效（长度、日期或校验码不正确）。",
            Self::BirthDateMismatch => "身份证号码中的出生日期与证件上的出生日期不一致。",
            Self::SexMismatch => "身份证号码中的性别位与证件上的性别不一致。",
        }
    }

    /// English text.
    pub fn message_en(self) -> &'static str {
        match self {
            Self::NumberInvalid => "The ID number is invalid (length, date or check character).",
            Self::BirthDateMismatch => {
                "The birth date in the ID number differs from the printed one."
            }
            Self::SexMismatch => "The sex digit of the ID number differs from the printed sex.",
        }
    }
}

/// Checks the number and its agreement with the printed birth date and sex.
pub fn check_number(number: &str) -> Result<(), IdNumberError> {
    validate_id_number(number)
}

/// The birth date and sex a valid number encodes.
pub fn number_birth_sex(number: &str) -> Option<((u32, u32, u32), Sex)> {
    validate_id_number(number).ok()?;
    let num = |r: std::ops::Range<usize>| number.get(r)?.parse::<u32>().ok();
    let birth = (num(6..10)?, num(10..12)?, num(12..14)?);
    let sex = if num(16..17)? % 2 == 1 {
        Sex::Male
    } else {
        Sex::Female
    };
    Some((birth, sex))
}

/// Every disagreement between the number and the printed birth date and sex.
pub fn inconsistencies(front: &CardFront) -> Vec<Inconsistency> {
    match number_birth_sex(&front.number) {
        None => vec![Inconsistency::NumberInvalid],
        Some((birth, sex)) => {
            let mut out = Vec::new();
            if birth != front.birth {
                out.push(Inconsistency::BirthDateMismatch);
            }
            if sex != front.sex {
                out.push(Inconsistency::SexMismatch);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn front(number: &str, birth: (u32, u32, u32), sex: Sex) -> CardFront {
        CardFront {
            name: "张三".into(),
            sex,
            ethnicity: "汉".into(),
            birth,
            address: "北京市东城区".into(),
            number: number.into(),
        }
    }

    #[test]
    fn consistent_card_has_no_findings() {
        // 11010119900307001 → check character 1; sequence 001 is odd: male.
        let f = front("110101199003070011", (1990, 3, 7), Sex::Male);
        assert_eq!(check_number(&f.number), Ok(()));
        assert!(inconsistencies(&f).is_empty());
    }

    #[test]
    fn each_disagreement_is_reported() {
        let good = "110101199003070011";
        assert_eq!(
            inconsistencies(&front(good, (1990, 3, 8), Sex::Male)),
            vec![Inconsistency::BirthDateMismatch]
        );
        assert_eq!(
            inconsistencies(&front(good, (1990, 3, 7), Sex::Female)),
            vec![Inconsistency::SexMismatch]
        );
        assert_eq!(
            inconsistencies(&front("110101199003070012", (1990, 3, 7), Sex::Male)),
            vec![Inconsistency::NumberInvalid]
        );
    }
}
