//! Word lists the generated entities draw their text from: Finnish, English
//! and Swedish names with the non-ASCII letters (ä, ö, å) and the odd
//! multi-byte symbol real Sisu data carries, so consumers' text handling is
//! exercised.

/// A localized text: `[fi, en, sv]`.
pub type Loc = [&'static str; 3];

/// Subjects for courses, modules and educations.
#[rustfmt::skip]
pub const SUBJECTS: &[Loc] = &[
    ["Ohjelmoinnin perusteet", "Introduction to Programming", "Grunderna i programmering"],
    ["Tietorakenteet ja algoritmit", "Data Structures and Algorithms", "Datastrukturer och algoritmer"],
    ["Lineaarialgebra ja matriisilaskenta", "Linear Algebra and Matrices", "Linjär algebra och matriser"],
    ["Differentiaali- ja integraalilaskenta", "Calculus", "Differential- och integralkalkyl"],
    ["Yleinen kemia", "General Chemistry", "Allmän kemi"],
    ["Solubiologia", "Cell Biology", "Cellbiologi"],
    ["Suomen kielen äänne- ja muotorakenne", "Finnish Phonology and Morphology", "Finskans ljud- och formlära"],
    ["Ruotsin kieli: suullinen taito", "Swedish: Oral Skills", "Svenska: muntlig färdighet"],
    ["Kansantaloustieteen perusteet", "Principles of Economics", "Grunderna i nationalekonomi"],
    ["Oikeushistoria", "Legal History", "Rättshistoria"],
    ["Eläinfysiologia", "Animal Physiology", "Djurfysiologi"],
    ["Metsäekologia", "Forest Ecology", "Skogsekologi"],
    ["Ympäristöpolitiikka", "Environmental Policy", "Miljöpolitik"],
    ["Käyttöjärjestelmät", "Operating Systems", "Operativsystem"],
    ["Tilastotieteen johdantokurssi", "Introduction to Statistics", "Introduktion till statistik"],
    ["Kvanttimekaniikka I", "Quantum Mechanics I", "Kvantmekanik I"],
    ["Yhteiskuntapolitiikan teoriat", "Theories of Social Policy", "Socialpolitiska teorier"],
    ["Kasvatuspsykologia", "Educational Psychology", "Pedagogisk psykologi"],
    ["Lääketieteen etiikka", "Medical Ethics", "Medicinsk etik"],
    ["Maantieteen kenttäkurssi – Lappi", "Geography Field Course – Lapland", "Fältkurs i geografi – Lappland"],
    ["Musiikkitiede ja ääni", "Musicology and Sound", "Musikvetenskap och ljud"],
    ["Pohjoismainen mytologia", "Nordic Mythology", "Nordisk mytologi"],
    ["Öljykasvien viljely", "Cultivation of Oil Crops", "Odling av oljeväxter"],
    ["Äidinkielen didaktiikka", "Mother Tongue Didactics", "Modersmålets didaktik"],
    ["Åländsk historia", "History of Åland", "Ålands historia"],
    ["Tutkielmaseminaari", "Thesis Seminar", "Avhandlingsseminarium"],
    ["Harjoittelu työelämässä", "Work Placement", "Praktik i arbetslivet"],
    ["Johdatus yliopisto-opiskeluun", "Orientation to University Studies", "Introduktion till universitetsstudier"],
];

/// Degree-programme and education names.
#[rustfmt::skip]
pub const PROGRAMMES: &[Loc] = &[
    ["Tietojenkäsittelytieteen kandiohjelma", "Bachelor's Programme in Computer Science", "Kandidatprogrammet i datavetenskap"],
    ["Matemaattisten tieteiden maisteriohjelma", "Master's Programme in Mathematics and Statistics", "Magisterprogrammet i matematik och statistik"],
    ["Kemian kandiohjelma", "Bachelor's Programme in Chemistry", "Kandidatprogrammet i kemi"],
    ["Oikeusnotaarin koulutusohjelma", "Bachelor's Programme in Law", "Utbildningsprogrammet för rättsnotarie"],
    ["Lääketieteen koulutusohjelma", "Degree Programme in Medicine", "Utbildningsprogrammet i medicin"],
    ["Kasvatustieteellinen tohtoriohjelma", "Doctoral Programme in Education", "Doktorandprogrammet i pedagogik"],
    ["Metsätieteiden maisteriohjelma", "Master's Programme in Forest Sciences", "Magisterprogrammet i skogsvetenskaper"],
    ["Yhteiskunnallisen muutoksen maisteriohjelma", "Master's Programme in Social Change", "Magisterprogrammet i samhällsförändring"],
    ["Kielten kandiohjelma", "Bachelor's Programme in Languages", "Kandidatprogrammet i språk"],
    ["Eläinlääketieteen koulutusohjelma", "Degree Programme in Veterinary Medicine", "Utbildningsprogrammet i veterinärmedicin"],
];

/// Organisation names (faculties, departments, units).
#[rustfmt::skip]
pub const ORGANISATIONS: &[Loc] = &[
    ["Matemaattis-luonnontieteellinen tiedekunta", "Faculty of Science", "Matematisk-naturvetenskapliga fakulteten"],
    ["Humanistinen tiedekunta", "Faculty of Arts", "Humanistiska fakulteten"],
    ["Oikeustieteellinen tiedekunta", "Faculty of Law", "Juridiska fakulteten"],
    ["Lääketieteellinen tiedekunta", "Faculty of Medicine", "Medicinska fakulteten"],
    ["Maatalous-metsätieteellinen tiedekunta", "Faculty of Agriculture and Forestry", "Agrikultur-forstvetenskapliga fakulteten"],
    ["Valtiotieteellinen tiedekunta", "Faculty of Social Sciences", "Statsvetenskapliga fakulteten"],
    ["Kasvatustieteellinen tiedekunta", "Faculty of Educational Sciences", "Pedagogiska fakulteten"],
    ["Tietojenkäsittelytieteen osasto", "Department of Computer Science", "Institutionen för datavetenskap"],
    ["Kemian osasto", "Department of Chemistry", "Kemiska institutionen"],
    ["Kielikeskus", "Language Centre", "Språkcentrum"],
    ["Avoin yliopisto", "Open University", "Öppna universitetet"],
    ["Ruotsinkielinen sosiaali- ja kunnallishallinnon koulutus", "Swedish School of Social Science", "Svenska social- och kommunalhögskolan"],
];

/// Building and room names for locations.
#[rustfmt::skip]
pub const BUILDINGS: &[Loc] = &[
    ["Exactum", "Exactum", "Exactum"],
    ["Physicum", "Physicum", "Physicum"],
    ["Päärakennus", "Main Building", "Huvudbyggnaden"],
    ["Porthania", "Porthania", "Porthania"],
    ["Metsätalo", "Metsätalo", "Metsätalo"],
    ["Biokeskus 3", "Biocenter 3", "Biocentrum 3"],
    ["Töölön kampuskirjasto", "Töölö Campus Library", "Tölö campusbibliotek"],
    ["Viikin Infokeskus Korona", "Viikki Infocentre Korona", "Infocentret Korona i Vik"],
];

/// Study-group labels; the emoji and the dash are deliberate.
#[rustfmt::skip]
pub const GROUPS: &[Loc] = &[
    ["Luentoryhmä", "Lecture group", "Föreläsningsgrupp"],
    ["Harjoitusryhmä", "Exercise group", "Övningsgrupp"],
    ["Etäryhmä – verkossa", "Remote group – online", "Distansgrupp – på nätet"],
    ["Laboratoriotyöt 🧪", "Laboratory work 🧪", "Laboratoriearbete 🧪"],
    ["Tenttiryhmä", "Exam group", "Tentamensgrupp"],
    ["Pienryhmä (maksu 25 €)", "Small group (fee €25)", "Smågrupp (avgift 25 €)"],
];

/// First names, some with ä, ö and å.
#[rustfmt::skip]
pub const FIRST_NAMES: &[&str] = &[
    "Aino", "Eetu", "Sanna-Maija", "Jöns", "Åsa", "Väinö", "Päivi", "Mikko",
    "Elsa", "Onni", "Sörkka", "Leevi", "Iida", "Matti", "Märta", "Ylva",
    "Juho", "Kaisa", "Björn", "Helmi", "Nguyễn", "Zoë", "Aleksi", "Venla",
];

/// Last names, some with ä, ö and å.
#[rustfmt::skip]
pub const LAST_NAMES: &[&str] = &[
    "Mäkinen", "Virtanen", "Ström", "Öhman", "Korhonen", "Nieminen", "Järvinen",
    "Hämäläinen", "Lindqvist", "Åberg", "Heikkilä", "Söderholm", "Koskinen", "Lehtonen",
    "Väisänen", "Kärkkäinen", "Ek", "Mäenpää", "Björklund", "Laaksonen",
];

/// Street names for addresses.
#[rustfmt::skip]
pub const STREETS: &[&str] = &[
    "Mannerheimintie", "Hämeentie", "Töölönkatu", "Fredrikinkatu", "Mäkelänkatu",
    "Runebergsgatan", "Itäinen Pitkäkatu", "Pohjoisesplanadi", "Kyläsaarenkatu",
];

/// Cities for addresses.
#[rustfmt::skip]
pub const CITIES: &[&str] = &[
    "Helsinki", "Espoo", "Vantaa", "Järvenpää", "Hämeenlinna", "Turku", "Mariehamn", "Tampere",
];

/// Longer free text for descriptions (`contentDescription`, outcomes).
#[rustfmt::skip]
pub const DESCRIPTIONS: &[Loc] = &[
    [
        "Opiskelija osaa soveltaa keskeisiä käsitteitä ja menetelmiä sekä arvioida niiden rajoituksia käytännön tilanteissa.",
        "The student can apply the central concepts and methods and assess their limitations in practical situations.",
        "Studenten kan tillämpa centrala begrepp och metoder samt bedöma deras begränsningar i praktiska situationer.",
    ],
    [
        "Kurssi koostuu luennoista, viikkoharjoituksista ja loppukokeesta. Läsnäolo ensimmäisellä luennolla on pakollinen.",
        "The course consists of lectures, weekly exercises and a final exam. Attendance at the first lecture is mandatory.",
        "Kursen består av föreläsningar, veckoövningar och en sluttentamen. Närvaro vid första föreläsningen är obligatorisk.",
    ],
    [
        "Opintojakso suoritetaan itsenäisesti verkossa – materiaalit löytyvät Moodlesta. Kurssikirjan hinta n. 45 €.",
        "The course is completed independently online – materials are in Moodle. The textbook costs about €45.",
        "Kursen avläggs självständigt på nätet – materialet finns i Moodle. Kursboken kostar cirka 45 €.",
    ],
];

/// Latin-script folding for e-mail addresses (`Mäkinen` → `makinen`).
pub fn ascii_lower(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            'ä' | 'Ä' | 'å' | 'Å' => out.push('a'),
            'ö' | 'Ö' => out.push('o'),
            'ë' | 'ễ' => out.push('e'),
            '-' | ' ' => out.push('.'),
            c if c.is_ascii_alphanumeric() => out.push(c.to_ascii_lowercase()),
            _ => {}
        }
    }
}
