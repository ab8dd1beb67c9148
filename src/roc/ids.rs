//! Lexical forms of the ROC identifiers (spec section 3) and the NIR key.

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// NIR, 13 characters: `[12][0-9]{2}(0[1-9]|1[0-2]|[2-9][0-9])(2A|2B|[0-9]{2})[0-9]{6}`.
pub fn is_nir(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 13 || !b.is_ascii() {
        return false;
    }
    let sex_ok = b[0] == b'1' || b[0] == b'2';
    let year_ok = all_digits(&s[1..3]);
    let month_ok = all_digits(&s[3..5])
        && s[3..5]
            .parse::<u8>()
            .is_ok_and(|m| (1..=12).contains(&m) || (20..=99).contains(&m));
    let dept_ok = matches!(&s[5..7], "2A" | "2B") || all_digits(&s[5..7]);
    sex_ok && year_ok && month_ok && dept_ok && all_digits(&s[7..13])
}

/// The NIR key: `97 − (NIR mod 97)` after replacing `2A` by `19` and `2B` by `18`
/// (1–97). `None` when `nir` is not a NIR.
pub fn nir_key(nir: &str) -> Option<u8> {
    if !is_nir(nir) {
        return None;
    }
    let digits = match &nir[5..7] {
        "2A" => format!("{}19{}", &nir[..5], &nir[7..]),
        "2B" => format!("{}18{}", &nir[..5], &nir[7..]),
        _ => nir.to_string(),
    };
    let n: u64 = digits.parse().ok()?;
    Some((97 - n % 97) as u8)
}

/// Whether `cle` (2 digits) is the key of `nir`.
pub fn nir_key_matches(nir: &str, cle: &str) -> bool {
    nir_key(nir).is_some_and(|k| format!("{k:02}") == cle)
}

/// `cleNir`: 2 digits.
pub fn is_cle_nir(s: &str) -> bool {
    s.len() == 2 && all_digits(s)
}

/// `dateNaissance`, lexically: 8 digits (calendar validity is a business check, R05).
pub fn is_date_naissance(s: &str) -> bool {
    s.len() == 8 && all_digits(s)
}

/// `rangGemellaire`: one digit 1–9.
pub fn parse_rang(s: &str) -> Option<u8> {
    match s.as_bytes() {
        [d @ b'1'..=b'9'] => Some(d - b'0'),
        _ => None,
    }
}

/// `numeroAmc`: 8 digits.
pub fn is_numero_amc(s: &str) -> bool {
    s.len() == 8 && all_digits(s)
}

/// FINESS: 9 characters, digits, positions 1–2 may be `2A`/`2B`.
pub fn is_finess(s: &str) -> bool {
    s.len() == 9
        && s.is_ascii()
        && (matches!(&s[..2], "2A" | "2B") || all_digits(&s[..2]))
        && all_digits(&s[2..])
}

/// `numeroAdherent`: 1–15 ASCII alphanumerics.
pub fn is_numero_adherent(s: &str) -> bool {
    (1..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `typeConvention`: 2 uppercase letters.
pub fn is_type_convention(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// `critereSecondaire`: up to 10 characters.
pub fn is_csr(s: &str) -> bool {
    s.chars().count() <= 10
}

/// `idDossier`: 1–20 characters.
pub fn is_id_dossier(s: &str) -> bool {
    (1..=20).contains(&s.chars().count())
}

/// `numeroFacture`: 1–20 characters, none a control character.
pub fn is_numero_facture(s: &str) -> bool {
    (1..=20).contains(&s.chars().count()) && !s.chars().any(char::is_control)
}

/// `numeroEngagement`: 1–32 of `[A-Z0-9-]`.
pub fn is_numero_engagement(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// `quantite`: an xs:integer ≥ 1 (leading `+` and zeros allowed), as `u32`.
pub fn parse_quantite(s: &str) -> Option<u32> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if !all_digits(digits) {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() || trimmed.len() > 9 {
        return None;
    }
    trimmed.parse().ok()
}

/// xs:boolean: `true`, `false`, `1`, `0`.
pub fn parse_boolean(s: &str) -> Option<bool> {
    match s {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nir_keys_of_the_population() {
        assert_eq!(nir_key("1850775123456"), Some(8));
        assert_eq!(nir_key("2900133012345"), Some(21));
        assert_eq!(nir_key("2920892123004"), Some(12));
        assert_eq!(nir_key("1551013456789"), Some(55));
        assert_eq!(nir_key("2011275000111"), Some(41));
        assert_eq!(nir_key("1680344555666"), Some(84));
        assert_eq!(nir_key("1990259000123"), Some(11));
        assert_eq!(nir_key("1460831222333"), Some(82));
    }

    #[test]
    fn corsica_2a_is_19_and_2b_is_18() {
        // 285112A123456 -> 2851119123456
        assert_eq!(nir_key("285112A123456"), Some(79));
        assert_eq!(
            nir_key("285112A123456"),
            Some((97 - 2851119123456u64 % 97) as u8)
        );
        assert_eq!(
            nir_key("285112B123456"),
            Some((97 - 2851118123456u64 % 97) as u8)
        );
        assert!(nir_key_matches("285112A123456", "79"));
        assert!(!nir_key_matches("285112A123456", "78"));
    }

    #[test]
    fn key_is_two_digits() {
        assert!(nir_key_matches("1850775123456", "08"));
        assert!(!nir_key_matches("1850775123456", "8"));
    }

    #[test]
    fn numero_facture() {
        for ok in [
            "F1",
            "FAC-2026-0001",
            "2026/0001",
            "12345678901234567890",
            "é",
        ] {
            assert!(is_numero_facture(ok), "{ok}");
        }
        for bad in ["", "123456789012345678901", "F\n1", "F\t1"] {
            assert!(!is_numero_facture(bad), "{bad:?}");
        }
    }

    #[test]
    fn nir_pattern() {
        assert!(is_nir("1850775123456"));
        assert!(is_nir("285112A123456"));
        assert!(is_nir("2852099123456")); // month 20-99 allowed
        assert!(!is_nir("3850775123456"));
        assert!(!is_nir("1851375123456")); // month 13
        assert!(!is_nir("1850075123456")); // month 00
        assert!(!is_nir("185077512345"));
        assert!(!is_nir("18507751234567"));
        assert!(!is_nir("185112C123456"));
        assert!(!is_nir("18507751234é6"));
    }

    #[test]
    fn other_identifiers() {
        assert!(is_finess("750712184"));
        assert!(is_finess("2A0712184"));
        assert!(!is_finess("75071218"));
        assert!(!is_finess("7A0712184"));
        assert!(is_numero_amc("12345678"));
        assert!(!is_numero_amc("1234567A"));
        assert_eq!(parse_rang("1"), Some(1));
        assert_eq!(parse_rang("9"), Some(9));
        assert_eq!(parse_rang("0"), None);
        assert_eq!(parse_rang("10"), None);
        assert!(is_type_convention("RO"));
        assert!(!is_type_convention("Ro"));
        assert!(is_csr("94"));
        assert!(is_csr("9400000001"));
        assert!(!is_csr("94000000012"));
        assert!(is_numero_engagement("ENG-0123456789AB"));
        assert!(!is_numero_engagement("eng-1"));
        assert!(!is_numero_engagement(""));
        assert!(is_id_dossier("D-2026-0001"));
        assert!(!is_id_dossier(""));
        assert!(!is_id_dossier("123456789012345678901"));
        assert_eq!(parse_quantite("3"), Some(3));
        assert_eq!(parse_quantite("+03"), Some(3));
        assert_eq!(parse_quantite("0"), None);
        assert_eq!(parse_quantite("-1"), None);
        assert_eq!(parse_quantite("1.0"), None);
        assert!(is_numero_adherent("A00012345"));
        assert!(!is_numero_adherent("A-1"));
    }
}
