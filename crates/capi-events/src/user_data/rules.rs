//! One normaliser per hashed `user_data` key, each Meta's documented rule (customer-information
//! parameters), taking the strict reading where the documentation is loose, and each saying why a value is
//! refused (naming the key and the rule, never the value: it is PII).

/// Which rule normalises a key's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Email,
    Phone,
    Name,
    City,
    State,
    Zip,
    Country,
    Gender,
    DateOfBirth,
    ExternalId,
    FirstFiveLetters,
    Initial,
    BirthDay,
    BirthMonth,
    BirthYear,
}

/// How dates written with slashes or dots are read when the day and month could be either way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateOrder {
    /// `2/16/1997` (Meta's own example).
    #[default]
    MonthFirst,
    /// `16/2/1997`.
    DayFirst,
}

/// A source's conventions for values that do not carry their own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NormaliseSettings {
    /// The calling code (digits, e.g. `1`, `44`) added to phone numbers written without `+` or `00`.
    /// Without it such a number is refused: Meta requires the country code.
    pub default_calling_code: Option<String>,
    pub date_order: DateOrder,
    /// The latest birth year accepted (Meta: 1900 to the current year).
    pub current_year: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    #[error("user_data.{key}: unknown key")]
    UnknownKey { key: String },
    #[error("user_data.{key}: {rule}")]
    Invalid { key: String, rule: &'static str },
}

impl NormaliseError {
    /// The same error naming the key the caller sent (a rule shared by several keys names them all).
    pub fn for_key(self, sent_key: &str) -> NormaliseError {
        match self {
            NormaliseError::Invalid { rule, .. } => NormaliseError::Invalid {
                key: sent_key.to_owned(),
                rule,
            },
            unknown => unknown,
        }
    }
}

fn invalid(key: &'static str, rule: &'static str) -> NormaliseError {
    NormaliseError::Invalid {
        key: key.to_owned(),
        rule,
    }
}

/// The normalised form of `value` (already trimmed) under `rule`, ready to hash.
pub fn normalise(rule: Rule, value: &str, settings: &NormaliseSettings) -> Result<String, NormaliseError> {
    match rule {
        Rule::Email => email(value),
        Rule::Phone => phone(value, settings),
        Rule::Name => letters_only("fn/ln", value),
        Rule::City => letters_only("ct", value),
        Rule::State => state(value),
        Rule::Zip => zip(value),
        Rule::Country => country(value),
        Rule::Gender => gender(value),
        Rule::DateOfBirth => date_of_birth(value, settings),
        Rule::ExternalId => non_empty("external_id", value).map(str::to_owned),
        Rule::FirstFiveLetters => {
            letters_only("f5first/f5last", value).map(|letters| letters.chars().take(5).collect())
        }
        Rule::Initial => letters_only("fi", value).map(|letters| letters.chars().take(1).collect()),
        Rule::BirthDay => two_digits("dobd", value, 1, 31),
        Rule::BirthMonth => two_digits("dobm", value, 1, 12),
        Rule::BirthYear => birth_year(value, settings).map(|year| year.to_string()),
    }
}

fn non_empty<'a>(key: &'static str, value: &'a str) -> Result<&'a str, NormaliseError> {
    if value.is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    Ok(value)
}

/// Trimmed and lowercased (Meta: `John_Smith@gmail.com` → `john_smith@gmail.com`); it must look like an
/// address, or the hash could never match anyone.
fn email(value: &str) -> Result<String, NormaliseError> {
    let lowered = value.to_lowercase();
    let valid = match lowered.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !lowered.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if !valid {
        return Err(invalid("em", "must be an email address (name@domain)"));
    }
    Ok(lowered)
}

/// Digits only, with the country code and no leading zeros (Meta: US `(650)555-1212` → `16505551212`). A
/// number written with `+` or `00` carries its country code; another gets the source's default calling
/// code, unless its digits already begin with it, after its trunk zeros are dropped (UK `07911 123456` with
/// 44 → `447911123456`). An extension (`ext`, `x`, `#`, `;`) is not part of the number.
fn phone(value: &str, settings: &NormaliseSettings) -> Result<String, NormaliseError> {
    let lowered = value.to_lowercase();
    let number_part = ["ext", "x", "#", ";"]
        .iter()
        .filter_map(|marker| lowered.find(marker))
        .min()
        .map_or(lowered.as_str(), |cut| &lowered[..cut]);
    // "+44 (0)20 7946 0958": the bracketed trunk zero is dialled only inside the country, never after the
    // country code.
    let number_part = number_part.replace("(0)", "");
    let digits: String = number_part.chars().filter(char::is_ascii_digit).collect();
    let international = number_part.trim_start().starts_with('+') || digits.starts_with("00");
    let with_country_code = if international {
        digits.trim_start_matches('0').to_owned()
    } else {
        let Some(calling_code) = settings.default_calling_code.as_deref() else {
            return Err(invalid(
                "ph",
                "must include the country code (+…) or the source must set a default calling code",
            ));
        };
        if digits.starts_with(calling_code) {
            digits.clone()
        } else {
            format!("{calling_code}{}", digits.trim_start_matches('0'))
        }
    };
    if !(7..=15).contains(&with_country_code.len()) {
        return Err(invalid("ph", "must have 7 to 15 digits with its country code"));
    }
    Ok(with_country_code)
}

/// Lowercase letters of any script, nothing else: no punctuation, digits or spaces (Meta: `New York` →
/// `newyork`; UTF-8 letters such as é are kept).
fn letters_only(key: &'static str, value: &str) -> Result<String, NormaliseError> {
    let letters: String = value
        .chars()
        .filter(|character| character.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    if letters.is_empty() {
        return Err(invalid(key, "must contain letters"));
    }
    Ok(letters)
}

/// US states as their 2-letter code (a name is turned into it); other regions' names lowercase with no
/// punctuation or spaces.
fn state(value: &str) -> Result<String, NormaliseError> {
    let letters = letters_only("st", value)?;
    if let Some((code, _)) = US_STATES.iter().find(|(_, name)| *name == letters) {
        return Ok((*code).to_owned());
    }
    Ok(letters)
}

/// Lowercase, no spaces or dash; a US zip (5 digits, or ZIP+4) is its first 5 digits.
fn zip(value: &str) -> Result<String, NormaliseError> {
    let compact: String = value
        .chars()
        .filter(|character| !character.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    let digits_only: String = compact.chars().filter(|character| *character != '-').collect();
    let is_us_zip = digits_only.chars().all(|character| character.is_ascii_digit())
        && (digits_only.len() == 5 || digits_only.len() == 9);
    if is_us_zip {
        return Ok(digits_only[..5].to_owned());
    }
    let cleaned: String = digits_only
        .chars()
        .filter(|character| character.is_alphanumeric())
        .collect();
    non_empty("zp", &cleaned).map(str::to_owned)
}

/// Every ISO 3166-1 alpha-2 code `country` accepts, in capitals (any case is accepted; so are alpha-3 codes,
/// English names and `uk`).
pub fn country_codes() -> impl Iterator<Item = &'static str> {
    celes::Country::get_countries()
        .into_iter()
        .map(|country| country.alpha2)
}

/// ISO 3166-1 alpha-2, lowercase. An alpha-2 code must exist; an alpha-3 code or an English name (with or
/// without spaces: "United States", "USA", "Great Britain") is turned into its alpha-2 code, and "UK" into
/// "gb" (ISO's code for the United Kingdom).
fn country(value: &str) -> Result<String, NormaliseError> {
    const RULE: &str = "must be an ISO 3166-1 alpha-2 code such as us (or a country's alpha-3 code or English name)";
    let compact: String = value.chars().filter(|character| character.is_alphanumeric()).collect();
    if compact.eq_ignore_ascii_case("uk") {
        return Ok("gb".into());
    }
    let country = if compact.len() == 2 {
        celes::Country::from_alpha2(&compact)
    } else {
        compact.parse::<celes::Country>()
    };
    match country {
        Ok(country) => Ok(country.alpha2.to_ascii_lowercase()),
        Err(_) => Err(invalid("country", RULE)),
    }
}

/// `f` or `m`, from the initial or the word.
fn gender(value: &str) -> Result<String, NormaliseError> {
    match value.to_lowercase().as_str() {
        "f" | "female" | "woman" | "w" => Ok("f".into()),
        "m" | "male" | "man" => Ok("m".into()),
        _ => Err(invalid("ge", "must be f or m (or female / male)")),
    }
}

/// `YYYYMMDD` from `YYYYMMDD`, `YYYY-MM-DD`, `YYYY/MM/DD`, or month and day with slashes, dots or dashes
/// in the source's order (`2/16/1997` → `19970216`); year 1900 to the current year, a real calendar day.
fn date_of_birth(value: &str, settings: &NormaliseSettings) -> Result<String, NormaliseError> {
    const RULE: &str = "must be a date of birth (YYYYMMDD, YYYY-MM-DD or MM/DD/YYYY) from 1900 to this year";
    let parts: Vec<&str> = value
        .split(['-', '/', '.', ' '])
        .filter(|part| !part.is_empty())
        .collect();
    let numbers: Vec<u32> = parts.iter().filter_map(|part| part.parse().ok()).collect();
    if numbers.len() != parts.len() {
        return Err(invalid("db", RULE));
    }
    let (year, month, day) = match (parts.as_slice(), numbers.as_slice()) {
        ([whole], _) if whole.len() == 8 => {
            let year = whole[..4].parse().unwrap_or(0);
            let month = whole[4..6].parse().unwrap_or(0);
            let day = whole[6..].parse().unwrap_or(0);
            (year, month, day)
        }
        ([first, ..], [year, month, day]) if first.len() == 4 => (*year, *month, *day),
        ([_, _, last], [first, second, year]) if last.len() == 4 => match settings.date_order {
            DateOrder::MonthFirst => (*year, *first, *second),
            DateOrder::DayFirst => (*year, *second, *first),
        },
        _ => return Err(invalid("db", RULE)),
    };
    let latest_year = if settings.current_year == 0 {
        9999
    } else {
        settings.current_year
    };
    if !(1900..=latest_year).contains(&year) || !is_calendar_day(year, month, day) {
        return Err(invalid("db", RULE));
    }
    Ok(format!("{year:04}{month:02}{day:02}"))
}

fn is_calendar_day(year: u32, month: u32, day: u32) -> bool {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

/// A day or month as two digits (`7` → `07`).
fn two_digits(key: &'static str, value: &str, lowest: u32, highest: u32) -> Result<String, NormaliseError> {
    match value.parse::<u32>() {
        Ok(number) if (lowest..=highest).contains(&number) => Ok(format!("{number:02}")),
        _ => Err(invalid(key, "must be a number in range (day 1-31, month 1-12)")),
    }
}

fn birth_year(value: &str, settings: &NormaliseSettings) -> Result<u32, NormaliseError> {
    let latest_year = if settings.current_year == 0 {
        9999
    } else {
        settings.current_year
    };
    match value.parse::<u32>() {
        Ok(year) if value.len() == 4 && (1900..=latest_year).contains(&year) => Ok(year),
        _ => Err(invalid("doby", "must be a four-digit year from 1900 to this year")),
    }
}

/// US states, DC and territories: (ANSI/FIPS code, name as `letters_only` leaves it).
const US_STATES: [(&str, &str); 56] = [
    ("al", "alabama"),
    ("ak", "alaska"),
    ("az", "arizona"),
    ("ar", "arkansas"),
    ("ca", "california"),
    ("co", "colorado"),
    ("ct", "connecticut"),
    ("de", "delaware"),
    ("dc", "districtofcolumbia"),
    ("fl", "florida"),
    ("ga", "georgia"),
    ("hi", "hawaii"),
    ("id", "idaho"),
    ("il", "illinois"),
    ("in", "indiana"),
    ("ia", "iowa"),
    ("ks", "kansas"),
    ("ky", "kentucky"),
    ("la", "louisiana"),
    ("me", "maine"),
    ("md", "maryland"),
    ("ma", "massachusetts"),
    ("mi", "michigan"),
    ("mn", "minnesota"),
    ("ms", "mississippi"),
    ("mo", "missouri"),
    ("mt", "montana"),
    ("ne", "nebraska"),
    ("nv", "nevada"),
    ("nh", "newhampshire"),
    ("nj", "newjersey"),
    ("nm", "newmexico"),
    ("ny", "newyork"),
    ("nc", "northcarolina"),
    ("nd", "northdakota"),
    ("oh", "ohio"),
    ("ok", "oklahoma"),
    ("or", "oregon"),
    ("pa", "pennsylvania"),
    ("ri", "rhodeisland"),
    ("sc", "southcarolina"),
    ("sd", "southdakota"),
    ("tn", "tennessee"),
    ("tx", "texas"),
    ("ut", "utah"),
    ("vt", "vermont"),
    ("va", "virginia"),
    ("wa", "washington"),
    ("wv", "westvirginia"),
    ("wi", "wisconsin"),
    ("wy", "wyoming"),
    ("as", "americansamoa"),
    ("gu", "guam"),
    ("mp", "northernmarianaislands"),
    ("pr", "puertorico"),
    ("vi", "usvirginislands"),
];
