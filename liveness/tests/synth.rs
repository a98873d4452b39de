//! The generator's people are consistent: valid GB 11643 numbers whose birth date and sex
//! digit agree with the printed fields; addresses fit the card.

use liveness::idcard::{check_number, inconsistencies};
use liveness::layout::{ADDRESS_CHARS_PER_LINE, ADDRESS_LINES};
use liveness::synth::{ETHNICITIES, Person, address_lines};

#[test]
fn generated_people_are_consistent() {
    let people = Person::many(1, 500);
    let mut sexes = [0usize; 2];
    for p in &people {
        let f = &p.front;
        assert_eq!(check_number(&f.number), Ok(()), "{f:?}");
        assert!(inconsistencies(f).is_empty(), "{f:?}");
        assert!(ETHNICITIES.contains(&f.ethnicity.as_str()));
        assert!(
            f.address.chars().count() <= ADDRESS_CHARS_PER_LINE * ADDRESS_LINES.len(),
            "{}",
            f.address
        );
        assert_eq!(address_lines(&f.address).concat(), f.address);
        assert!(p.back.authority.ends_with("分局") || p.back.authority.ends_with("公安局"));
        sexes[usize::from(f.sex == liveness::idcard::Sex::Male)] += 1;
    }
    assert!(
        sexes[0] > 150 && sexes[1] > 150,
        "both sexes drawn: {sexes:?}"
    );
    // Deterministic: the same seed gives the same people.
    assert_eq!(Person::many(1, 3), people[..3]);
}
