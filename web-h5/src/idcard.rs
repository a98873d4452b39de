//! PRC resident identity numbers (GB 11643-1999): 17 digits and a check character computed
//! with ISO 7064 MOD 11-2 (`X` stands for 10). Checked in the page before the proxy form is
//! sent; the server checks again.

/// Why a number was refused (each has its own message in [`crate::i18n`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdNumberError {
    /// Not 18 characters.
    Length,
    /// One of the first 17 characters is not a digit, or the last is neither a digit nor `X`.
    Characters,
    /// The birth date (characters 7–14) is not a plausible date.
    BirthDate,
    /// The check character does not match.
    Checksum,
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [u8; 11] = *b"10X98765432";

/// Validates an 18-character resident ID number; a lower-case `x` is accepted.
pub fn validate(id: &str) -> Result<(), IdNumberError> {
    let bytes = id.trim().as_bytes();
    let [body @ .., last] = bytes else {
        return Err(IdNumberError::Length);
    };
    if bytes.len() != 18 {
        return Err(IdNumberError::Length);
    }
    if !body.iter().all(u8::is_ascii_digit)
        || !(last.is_ascii_digit() || *last == b'X' || *last == b'x')
    {
        return Err(IdNumberError::Characters);
    }
    let digit = |i: usize| u32::from(body[i] - b'0');
    let year = (6..10).fold(0, |acc, i| acc * 10 + digit(i));
    let month = digit(10) * 10 + digit(11);
    let day = digit(12) * 10 + digit(13);
    if !(1900..=2100).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(IdNumberError::BirthDate);
    }
    let sum: u32 = body
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let expect = CHECK[(sum % 11) as usize];
    if last.to_ascii_uppercase() == expect {
        Ok(())
    } else {
        Err(IdNumberError::Checksum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_numbers() {
        // The GB 11643 standard's own example, and one ending in X (upper and lower case).
        assert_eq!(validate("11010519491231002X"), Ok(()));
        assert_eq!(validate("11010519491231002x"), Ok(()));
        assert_eq!(validate("440524198001010013"), Ok(()));
    }

    #[test]
    fn refuses_bad_numbers() {
        assert_eq!(validate(""), Err(IdNumberError::Length));
        assert_eq!(validate("1101051949123100"), Err(IdNumberError::Length));
        assert_eq!(validate("11010519491231002XX"), Err(IdNumberError::Length));
        assert_eq!(
            validate("1101051949123100AX"),
            Err(IdNumberError::Characters)
        );
        assert_eq!(validate("110105194912310021"), Err(IdNumberError::Checksum));
        assert_eq!(
            validate("110105194913310023"),
            Err(IdNumberError::BirthDate)
        );
        assert_eq!(validate("身份证号码十八位数字"), Err(IdNumberError::Length));
    }

    #[test]
    fn every_single_digit_change_is_caught() {
        let good = "11010519491231002X";
        for pos in 0..17 {
            for d in b'0'..=b'9' {
                let mut b = good.as_bytes().to_vec();
                if b[pos] == d {
                    continue;
                }
                b[pos] = d;
                let s = String::from_utf8(b).unwrap();
                assert!(validate(&s).is_err(), "{s} accepted");
            }
        }
    }
}
