//! The whole-set sources: URN code books, KORI public curriculum periods
//! and GraphQL grade scales. They are small (a few to a few hundred items),
//! so each answer is simply rendered in full per request.

use super::json::{Json, Rng};
use super::words::Loc;

/// Real entries at the head of the country code book; the rest is filled
/// with numbered placeholders up to the size of the real book.
#[rustfmt::skip]
const COUNTRIES: &[(&str, Loc)] = &[
    ("246", ["Suomi", "Finland", "Finland"]),
    ("752", ["Ruotsi", "Sweden", "Sverige"]),
    ("578", ["Norja", "Norway", "Norge"]),
    ("208", ["Tanska", "Denmark", "Danmark"]),
    ("233", ["Viro", "Estonia", "Estland"]),
    ("643", ["Venäjä", "Russia", "Ryssland"]),
    ("276", ["Saksa", "Germany", "Tyskland"]),
    ("250", ["Ranska", "France", "Frankrike"]),
    ("724", ["Espanja", "Spain", "Spanien"]),
    ("826", ["Yhdistynyt kuningaskunta", "United Kingdom", "Förenade kungariket"]),
    ("840", ["Yhdysvallat (USA)", "United States (USA)", "Förenta staterna (USA)"]),
    ("156", ["Kiina", "China", "Kina"]),
    ("392", ["Japani", "Japan", "Japan"]),
    ("356", ["Intia", "India", "Indien"]),
    ("384", ["Norsunluurannikko", "Côte d’Ivoire", "Elfenbenskusten"]),
    ("248", ["Ahvenanmaa", "Åland Islands", "Åland"]),
    ("040", ["Itävalta", "Austria", "Österrike"]),
    ("792", ["Turkki", "Türkiye", "Turkiet"]),
];

#[rustfmt::skip]
const STUDY_LEVELS: &[(&str, Loc)] = &[
    ("basic-studies", ["Perusopinnot", "Basic studies", "Grundstudier"]),
    ("intermediate-studies", ["Aineopinnot", "Intermediate studies", "Ämnesstudier"]),
    ("advanced-studies", ["Syventävät opinnot", "Advanced studies", "Fördjupade studier"]),
    ("postgraduate-studies", ["Jatko-opinnot", "Postgraduate studies", "Forskarstudier"]),
    ("other-studies", ["Muut opinnot", "Other studies", "Övriga studier"]),
    ("preparatory-studies", ["Valmentavat opinnot", "Preparatory studies", "Förberedande studier"]),
];

#[rustfmt::skip]
const EDUCATION_TYPES: &[(&str, Loc)] = &[
    ("degree-education", ["Tutkintokoulutus", "Degree education", "Examensutbildning"]),
    ("degree-education:bachelors-degree", ["Alempi korkeakoulututkinto", "Bachelor's degree", "Lägre högskoleexamen"]),
    ("degree-education:masters-degree", ["Ylempi korkeakoulututkinto", "Master's degree", "Högre högskoleexamen"]),
    ("degree-education:bachelors-and-masters-degree", ["Alempi ja ylempi korkeakoulututkinto", "Bachelor's and master's degree", "Lägre och högre högskoleexamen"]),
    ("degree-education:doctoral-degree", ["Tohtorin tutkinto", "Doctoral degree", "Doktorsexamen"]),
    ("degree-education:licentiate-degree", ["Lisensiaatin tutkinto", "Licentiate degree", "Licentiatexamen"]),
    ("specialisation-education", ["Erikoistumiskoulutus", "Specialisation education", "Specialiseringsutbildning"]),
    ("non-degree-education", ["Tutkintoon johtamaton koulutus", "Non-degree education", "Utbildning som inte leder till examen"]),
    ("non-degree-education:open-university-studies", ["Avoimen yliopiston opinnot", "Open university studies", "Öppna universitetets studier"]),
    ("non-degree-education:exchange-studies", ["Vaihto-opinnot", "Exchange studies", "Utbytesstudier"]),
    ("non-degree-education:separate-studies", ["Erillisopinnot", "Separate studies", "Separata studier"]),
    ("non-degree-education:continuous-learning", ["Jatkuva oppiminen – täydennyskoulutus", "Continuous learning – further education", "Kontinuerligt lärande – fortbildning"]),
];

/// Expiration rules as a two-level tree: (code, parent code, type, name).
#[rustfmt::skip]
const EXPIRATION_RULES: &[(&str, Option<&str>, &str, Loc)] = &[
    ("absence", None, "GROUP", ["Poissaolosäännöt", "Absence rules", "Frånvaroregler"]),
    ("absence-counted", Some("absence"), "ABSENCE", ["Poissaolot lasketaan", "Absences counted", "Frånvaro räknas"]),
    ("absence-not-counted", Some("absence"), "ABSENCE", ["Poissaoloja ei lasketa", "Absences not counted", "Frånvaro räknas inte"]),
    ("statutory-absence", Some("absence"), "ABSENCE", ["Lakisääteinen poissaolo", "Statutory absence", "Lagstadgad frånvaro"]),
    ("extension", None, "GROUP", ["Jatkoaikasäännöt", "Extension rules", "Regler om tilläggstid"]),
    ("extension-possible", Some("extension"), "EXTENSION", ["Jatkoaika mahdollinen", "Extension possible", "Tilläggstid möjlig"]),
    ("no-extension", Some("extension"), "EXTENSION", ["Ei jatkoaikaa", "No extension", "Ingen tilläggstid"]),
    ("ends-at-graduation", None, "EXPIRATION", ["Päättyy valmistuessa", "Ends at graduation", "Upphör vid examen"]),
    ("fixed-term", None, "EXPIRATION", ["Määräaikainen", "Fixed term", "Tidsbunden"]),
];

#[rustfmt::skip]
const ADMISSION_TYPES: &[Loc] = &[
    ["Yhteishaku", "Joint application", "Gemensam ansökan"],
    ["Erillishaku", "Separate application", "Separat ansökan"],
    ["Siirtohaku", "Transfer application", "Överflyttningsansökan"],
    ["Avoimen väylä", "Open university path", "Öppna universitetets väg"],
    ["Kansainvälinen haku", "International admission", "Internationell ansökan"],
    ["Jatkokoulutushaku", "Doctoral admission", "Ansökan till forskarutbildning"],
    ["Vaihto-opiskelu", "Exchange", "Utbyte"],
    ["Muu valinta", "Other admission", "Annan antagning"],
    ["Täydennyskoulutus", "Further education", "Fortbildning"],
];

#[rustfmt::skip]
const DEGREE_TITLES: &[(&str, Loc)] = &[
    ("fil-kand", ["Filosofian kandidaatti", "Bachelor of Science", "Filosofie kandidat"]),
    ("fil-maist", ["Filosofian maisteri", "Master of Science", "Filosofie magister"]),
    ("fil-toht", ["Filosofian tohtori", "Doctor of Philosophy", "Filosofie doktor"]),
    ("oik-not", ["Oikeusnotaari", "Bachelor of Laws", "Rättsnotarie"]),
    ("oik-kand", ["Oikeustieteen maisteri", "Master of Laws", "Juris magister"]),
    ("lääk-lis", ["Lääketieteen lisensiaatti", "Licentiate of Medicine", "Medicine licentiat"]),
    ("el-lis", ["Eläinlääketieteen lisensiaatti", "Licentiate of Veterinary Medicine", "Veterinärmedicine licentiat"]),
    ("kasv-kand", ["Kasvatustieteen kandidaatti", "Bachelor of Education", "Pedagogie kandidat"]),
    ("valt-kand", ["Valtiotieteiden kandidaatti", "Bachelor of Social Sciences", "Politices kandidat"]),
    ("mmt-maist", ["Maatalous- ja metsätieteiden maisteri", "Master of Agriculture and Forestry", "Agronomie- och forstmagister"]),
];

/// Serves a URN code book: `book` is the last path segment
/// (`urn:code:country`). `None` for an unknown book.
pub fn urn_book(seed: u64, book: &str) -> Option<String> {
    let name = book.strip_prefix("urn:code:")?;
    let name_hash = name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let mut rng = Rng::new(&[seed, name_hash, 0x0b00]);
    let mut w = Json::new(String::with_capacity(32 * 1024));
    w.open();
    let item = |w: &mut Json, code: &str, text: [&str; 3], extra: &dyn Fn(&mut Json)| {
        item(w, book, code, text, extra)
    };
    match name {
        "country" => {
            for (code, text) in COUNTRIES {
                item(&mut w, code, *text, &|w| w.f_str("numeric", code));
            }
            // Real book: about 250 countries; placeholder names for the rest.
            let total = 240 + rng.below(10);
            for n in 0..total - COUNTRIES.len() as u64 {
                // Codes above 999 cannot clash with real ISO 3166 numbers.
                let code = (1000 + n).to_string();
                let fi = format!("Maa nro {n} – ”Ääri-Itä”");
                let en = format!("Country no. {n}");
                let sv = format!("Land nr {n}");
                item(&mut w, &code, [&fi, &en, &sv], &|w| {
                    w.f_str("numeric", &code)
                });
            }
        }
        "study-level" => {
            for (code, text) in STUDY_LEVELS {
                item(&mut w, code, *text, &|w| w.f_bool("isLeafNode", true));
            }
        }
        "education-type" => {
            for (code, text) in EDUCATION_TYPES {
                let parent = code
                    .rsplit_once(':')
                    .map(|(parent, _)| format!("{book}:{parent}"));
                let leaf = !EDUCATION_TYPES
                    .iter()
                    .any(|(other, _)| other.len() > code.len() && other.starts_with(code));
                item(&mut w, code, *text, &|w| {
                    match &parent {
                        Some(p) => w.f_str("parentUrn", p),
                        None => w.f_raw("parentUrn", "null"),
                    }
                    w.f_bool("isLeafNode", leaf);
                });
            }
        }
        "study-right-expiration-rules" => {
            for (code, parent, kind, text) in EXPIRATION_RULES {
                let leaf = !EXPIRATION_RULES
                    .iter()
                    .any(|(_, p, _, _)| p == &Some(*code));
                item(&mut w, code, *text, &|w| {
                    w.f_loc("shortName", [code, code, code]);
                    match parent {
                        Some(p) => w.f_fmt("parentUrn", format_args!("{book}:{p}")),
                        None => w.f_raw("parentUrn", "null"),
                    }
                    w.f_str("type", kind);
                    w.f_bool("isLeafNode", leaf);
                });
            }
        }
        "degree-title" => {
            let total = 80 + rng.below(20) as usize;
            for n in 0..total {
                let (code, [fi, en, sv]) = DEGREE_TITLES[n % DEGREE_TITLES.len()];
                let round = n / DEGREE_TITLES.len();
                let code = if round == 0 {
                    code.to_owned()
                } else {
                    format!("{code}-{round}")
                };
                let (fi, en, sv) = match round {
                    0 => (fi.to_owned(), en.to_owned(), sv.to_owned()),
                    r => (
                        format!("{fi} ({r}. ohjelma)"),
                        format!("{en} (programme {r})"),
                        format!("{sv} (program {r})"),
                    ),
                };
                item(&mut w, &code, [&fi, &en, &sv], &|w| {
                    w.f_loc("shortName", [&code, &code, &code])
                });
            }
        }
        "education-classification" => {
            // A three-level numeric tree: 6 → 61 → 612.
            for top in 1..=9u64 {
                let top_code = top.to_string();
                item(
                    &mut w,
                    &top_code,
                    ["Koulutusala", "Field of education", "Utbildningsområde"],
                    &|w| {
                        w.f_loc("shortName", [&top_code, &top_code, &top_code]);
                        w.f_raw("parentUrn", "null");
                        w.f_bool("isLeafNode", false);
                    },
                );
                for mid in 1..=rng.range(2, 4) {
                    let mid_code = format!("{top}{mid}");
                    let parent = format!("{book}:{top}");
                    item(
                        &mut w,
                        &mid_code,
                        ["Koulutusalaryhmä", "Group of fields", "Grupp av områden"],
                        &|w| {
                            w.f_loc("shortName", [&mid_code, &mid_code, &mid_code]);
                            w.f_str("parentUrn", &parent);
                            w.f_bool("isLeafNode", false);
                        },
                    );
                    for low in 1..=rng.range(2, 6) {
                        let parent = format!("{book}:{mid_code}");
                        let code = format!("{mid_code}{low}");
                        item(
                            &mut w,
                            &code,
                            [
                                "Koulutusnimike – yksityiskohtainen",
                                "Detailed field",
                                "Detaljerat område",
                            ],
                            &|w| {
                                w.f_loc("shortName", [&code, &code, &code]);
                                w.f_str("parentUrn", &parent);
                                w.f_bool("isLeafNode", true);
                            },
                        );
                    }
                }
            }
        }
        "admission-type" => {
            for (n, text) in ADMISSION_TYPES.iter().enumerate() {
                item(&mut w, &(n + 1).to_string(), *text, &|w| {
                    w.f_str("type", "ADMISSION")
                });
            }
        }
        _ => return None,
    }
    w.close();
    Some(w.buf)
}

/// `"<book>:<code>": {"urn": …, "name": {…}, <extra>}`.
fn item(w: &mut Json, book: &str, code: &str, text: [&str; 3], extra: &dyn Fn(&mut Json)) {
    w.key(&format!("{book}:{code}"));
    w.open();
    w.f_fmt("urn", format_args!("{book}:{code}"));
    w.f_loc("name", text);
    extra(w);
    w.close();
}

/// Serves KORI public `curriculum-periods`: one per academic year, ids like
/// `hy-lv-72` (the year counted from 1950), for `university_org_id`.
pub fn curriculum_periods(seed: u64, university_org_id: &str) -> String {
    let mut rng = Rng::new(&[seed, 0xc0]);
    let count = rng.range(10, 60) as i64;
    let mut w = Json::new(String::with_capacity(count as usize * 300));
    w.open_arr();
    for year in 2030 - count..2030 {
        let next = year + 1;
        w.open();
        w.f_fmt("id", format_args!("hy-lv-{}", year - 1950));
        w.f_str("documentState", "ACTIVE");
        w.f_str("universityOrgId", university_org_id);
        w.key("name");
        w.open();
        w.f_fmt("fi", format_args!("Lukuvuosi {year}–{next}"));
        w.f_fmt("en", format_args!("Academic year {year}–{next}"));
        w.f_fmt("sv", format_args!("Läsår {year}–{next}"));
        w.close();
        w.f_fmt(
            "abbreviation",
            format_args!("{}-{}", year % 100, next % 100),
        );
        w.key("activePeriod");
        w.open();
        w.f_fmt("startDate", format_args!("{year}-08-01"));
        w.f_fmt("endDate", format_args!("{next}-08-01"));
        w.close();
        w.close();
    }
    w.close_arr();
    w.buf
}

/// One grade scale whose grades are numbered from `low`; the first fails.
fn scale(w: &mut Json, id: &str, name: Loc, abbr: Loc, grades: &[Loc], low: i64) {
    w.open();
    w.f_str("id", id);
    w.f_loc("name", name);
    w.f_loc("abbreviation", abbr);
    w.key("grades");
    w.open_arr();
    for (i, grade) in grades.iter().enumerate() {
        let short = grade.map(|text| text.chars().take(3).collect::<String>());
        w.open();
        w.f_fmt("localId", format_args!("{}", low + i as i64));
        w.f_loc("name", *grade);
        w.f_loc("abbreviation", [&short[0], &short[1], &short[2]]);
        w.f_bool("passed", i > 0);
        w.f_int("numericCorrespondence", low + i as i64);
        w.close();
    }
    w.close_arr();
    w.close();
}

/// Serves the GraphQL answer to a `grade_scales` query.
pub fn grade_scales(seed: u64) -> String {
    #[rustfmt::skip]
    const NUMERIC: &[Loc] = &[
        ["Hylätty", "Fail", "Underkänd"],
        ["Välttävä", "Passable", "Försvarlig"],
        ["Tyydyttävä", "Satisfactory", "Nöjaktig"],
        ["Hyvä", "Good", "Bra"],
        ["Kiitettävä", "Very good", "Berömlig"],
        ["Erinomainen", "Excellent", "Utmärkt"],
    ];
    #[rustfmt::skip]
    const PASS_FAIL: &[Loc] = &[
        ["Hylätty", "Fail", "Underkänd"],
        ["Hyväksytty", "Pass", "Godkänd"],
    ];
    let mut rng = Rng::new(&[seed, 0x9a]);
    let mut w = Json::new(String::with_capacity(16 * 1024));
    w.open();
    w.key("data");
    w.open();
    w.key("grade_scales");
    w.open_arr();
    scale(
        &mut w,
        "sis-0-5",
        ["Arvosana 0–5", "Grade 0–5", "Vitsord 0–5"],
        ["0–5", "0–5", "0–5"],
        NUMERIC,
        0,
    );
    scale(
        &mut w,
        "sis-hyl-hyv",
        ["Hylätty–hyväksytty", "Fail–pass", "Underkänd–godkänd"],
        ["HYL-HYV", "F-P", "UK-G"],
        PASS_FAIL,
        0,
    );
    scale(
        &mut w,
        "sis-0-3",
        ["Arvosana 0–3", "Grade 0–3", "Vitsord 0–3"],
        ["0–3", "0–3", "0–3"],
        &NUMERIC[..4],
        0,
    );
    scale(
        &mut w,
        "hy-lt-1-5",
        [
            "Lääketieteen arvosana 1–5",
            "Medicine grade 1–5",
            "Medicinskt vitsord 1–5",
        ],
        ["1–5", "1–5", "1–5"],
        &NUMERIC[..5],
        1,
    );
    scale(
        &mut w,
        "sis-cum-laude",
        ["Latinalaiset arvosanat", "Latin grades", "Latinska vitsord"],
        ["L", "L", "L"],
        NUMERIC,
        0,
    );
    // Departments add their own scales: 0–7 more, by seed.
    for n in 0..rng.below(8) {
        let id = format!("hy-asteikko-{}", n + 1);
        let grades = &NUMERIC[..2 + n as usize % 5];
        scale(
            &mut w,
            &id,
            [
                "Osaston asteikko ✔",
                "Department scale ✔",
                "Institutionens skala ✔",
            ],
            ["OS", "DS", "IS"],
            grades,
            0,
        );
    }
    w.close_arr();
    w.close();
    w.close();
    w.buf
}
