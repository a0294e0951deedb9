//! A synthetic population for tests and benchmarks: Italian and foreign names with the errors
//! real registrations carry (typos, swapped name order, transliterations, missing, partial and
//! placeholder birth dates), people seen in several ambiti. Seeded and reproducible.

use super::encode::LinkRecord;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A name and its other spellings.
type Name = &'static [&'static str];

struct Origin {
    countries: &'static [&'static str],
    /// Syllables (start, middle, end) for the long tail of family names: real surnames are far
    /// more varied than any list, and a short list would make namesakes unrealistically common.
    tail: [&'static [&'static str]; 3],
    weight: u32,
    male: &'static [Name],
    female: &'static [Name],
    family: &'static [Name],
    documented: f64,
}

const ORIGINS: &[Origin] = &[
    Origin {
        countries: &["IT"],
        tail: [
            &[
                "Bar", "Bel", "Ber", "Bon", "Cal", "Cam", "Car", "Cas", "Cec", "Col", "Cor", "Fab",
                "Fal", "Fer", "Gal", "Gia", "Lan", "Lor", "Man", "Mar", "Mas", "Mor", "Nar", "Pac",
                "Pan", "Pel", "Pie", "Ros", "Sal", "San", "Ser", "Tor", "Val", "Ven", "Vit", "Bru",
                "Cio", "Dan", "Gue", "Lup",
            ],
            &[
                "", "ar", "el", "ol", "in", "an", "er", "ac", "at", "ott", "ell", "ucc", "egr",
                "ald", "ard",
            ],
            &[
                "i", "ini", "etti", "elli", "ucci", "one", "oni", "ato", "ese", "aro", "ai",
                "otti", "ieri",
            ],
        ],
        weight: 40,
        documented: 0.97,
        male: &[
            &["Marco"],
            &["Giuseppe"],
            &["Giovanni"],
            &["Antonio"],
            &["Francesco"],
            &["Luca"],
            &["Andrea"],
            &["Paolo"],
            &["Stefano"],
            &["Roberto"],
            &["Salvatore"],
            &["Mario"],
            &["Luigi"],
            &["Alessandro"],
            &["Davide"],
            &["Massimo"],
            &["Fabio"],
            &["Claudio"],
            &["Vincenzo"],
            &["Domenico"],
            &["Nicolò", "Nicolo"],
            &["Gianni"],
            &["Sergio"],
            &["Enrico"],
        ],
        female: &[
            &["Maria"],
            &["Anna"],
            &["Giuseppina"],
            &["Rosa"],
            &["Angela"],
            &["Giovanna"],
            &["Teresa"],
            &["Lucia"],
            &["Carmela"],
            &["Francesca"],
            &["Paola"],
            &["Laura"],
            &["Elena"],
            &["Giulia"],
            &["Chiara"],
            &["Silvia"],
            &["Monica"],
            &["Patrizia"],
            &["Roberta"],
            &["Simona"],
            &["Anna Maria"],
        ],
        family: &[
            &["Rossi"],
            &["Russo"],
            &["Ferrari"],
            &["Esposito"],
            &["Bianchi"],
            &["Romano"],
            &["Colombo"],
            &["Ricci"],
            &["Marino"],
            &["Greco"],
            &["Bruno"],
            &["Gallo"],
            &["Conti"],
            &["De Luca", "Deluca"],
            &["Mancini"],
            &["Costa"],
            &["Giordano"],
            &["Rizzo"],
            &["Lombardi"],
            &["Moretti"],
            &["Barbieri"],
            &["Fontana"],
            &["Santoro"],
            &["Mariani"],
            &["Rinaldi"],
            &["Caruso"],
            &["Ferrara"],
            &["Galli"],
            &["Martini"],
            &["Leone"],
            &["D'Angelo", "Dangelo"],
            &["Longo"],
            &["Gentile"],
            &["Martinelli"],
            &["Vitale"],
            &["Lombardo"],
            &["Serra"],
            &["Coppola"],
            &["De Santis"],
            &["Marchetti"],
            &["Parisi"],
            &["Villa"],
            &["Conte"],
            &["Ferraro"],
            &["Ferri"],
            &["Fabbri"],
            &["Bianco"],
            &["Marini"],
            &["Grasso"],
            &["Valentini"],
            &["Messina"],
            &["Sala"],
            &["De Angelis"],
            &["Gatti"],
            &["Pellegrini"],
            &["Palumbo"],
            &["Sanna"],
            &["Farina"],
            &["Rizzi"],
            &["Monti"],
            &["Cattaneo"],
            &["Morelli"],
            &["Amato"],
            &["Silvestri"],
            &["Mazza"],
            &["Testa"],
            &["Grassi"],
            &["Carbone"],
            &["Giuliani"],
            &["Benedetti"],
            &["Barone"],
            &["Caputo"],
            &["Montanari"],
            &["Guerra"],
            &["Palmieri"],
            &["Bernardi"],
            &["Fiore"],
            &["De Rosa"],
            &["Ferretti"],
            &["Bellini"],
            &["Basile"],
            &["Riva"],
            &["Donati"],
            &["Piras"],
            &["Battaglia"],
            &["Sartori"],
            &["Neri"],
            &["Milani"],
            &["Pagano"],
            &["Ruggiero"],
            &["Sorrentino"],
            &["D'Amico", "Damico"],
            &["Orlando"],
            &["Negri"],
            &["Cecchi"],
            &["Bartolini"],
            &["Innocenti"],
            &["Niccolai"],
            &["Bandini"],
            &["Pacini"],
        ],
    },
    Origin {
        countries: &["MA", "TN", "DZ", "EG"],
        tail: [
            &[
                "Ben", "El", "Bou", "Ait", "Ab", "Al", "Har", "Kh", "Mab", "Sa", "Ta", "Za", "Ch",
                "Ou", "Bel", "Mes",
            ],
            &[
                "", "dal", "ham", "kar", "lal", "mir", "rad", "sal", "zid", "far", "jel", "bar",
            ],
            &[
                "i", "ani", "ouni", "aoui", "ane", "em", "a", "oun", "ri", "di",
            ],
        ],
        weight: 20,
        documented: 0.7,
        male: &[
            &["Mohamed", "Mohammed", "Muhammad", "Mohamad"],
            &["Ahmed", "Ahmad"],
            &["Youssef", "Yusuf", "Youssouf"],
            &["Abdelkader", "Abd el Kader", "Abdulkadir"],
            &["Hassan", "Hasan"],
            &["Karim", "Kareem"],
            &["Rachid", "Rashid"],
            &["Said", "Saeed", "Saïd"],
            &["Mustapha", "Mustafa", "Moustafa"],
            &["Khalid", "Khaled"],
            &["Omar", "Umar"],
            &["Ali"],
            &["Hamza"],
            &["Brahim", "Ibrahim"],
            &["Abdelaziz", "Abdul Aziz"],
            &["Nabil"],
            &["Samir"],
            &["Tarek", "Tariq"],
            &["Walid", "Oualid"],
            &["Hicham", "Hisham"],
            &["Adil", "Adel"],
            &["Jamal", "Djamel"],
        ],
        female: &[
            &["Fatima", "Fatma", "Fatema"],
            &["Khadija", "Khadidja"],
            &["Aicha", "Aisha", "Aïcha"],
            &["Amina"],
            &["Nadia"],
            &["Samira"],
            &["Leila", "Layla", "Laila"],
            &["Malika"],
            &["Zineb", "Zaynab", "Zeinab"],
            &["Naima"],
            &["Souad", "Suad"],
            &["Hanane", "Hanan"],
        ],
        family: &[
            &["Benali", "Ben Ali"],
            &["El Amrani", "Elamrani"],
            &["Bouzid"],
            &["Haddad"],
            &["Mansouri"],
            &["Belkacem"],
            &["Cherif", "Sherif"],
            &["Saidi"],
            &["Trabelsi"],
            &["Ben Salah", "Bensalah"],
            &["El Idrissi", "Idrissi"],
            &["Ouali"],
            &["Bennani"],
            &["Hamdi"],
            &["Jaziri"],
            &["Khelifi"],
            &["Mahjoub"],
            &["Rahmani"],
            &["Zaoui"],
            &["Ait Ahmed"],
            &["Chaoui"],
            &["Bakkali"],
            &["Benjelloun"],
            &["Tazi"],
            &["Fassi"],
            &["Alaoui"],
            &["Berrada"],
            &["Mejri"],
            &["Gharbi"],
            &["Ferjani"],
        ],
    },
    Origin {
        countries: &["RO", "MD"],
        tail: [
            &[
                "Pop", "Ion", "Rad", "Dum", "Stoi", "Mat", "Cio", "Mun", "Mol", "Lun", "Flo",
                "Tud", "Bad", "Cost", "Nic", "Vas",
            ],
            &["", "esc", "ov", "an", "el", "it", "ur", "ar"],
            &["u", "escu", "ea", "eanu", "ache", "oiu", "an"],
        ],
        weight: 10,
        documented: 0.9,
        male: &[
            &["Ion", "Ioan"],
            &["Gheorghe"],
            &["Vasile"],
            &["Constantin"],
            &["Mihai", "Mihail"],
            &["Andrei"],
            &["Alexandru"],
            &["Florin"],
            &["Nicolae"],
            &["Ștefan", "Stefan"],
            &["Daniel"],
            &["Marian"],
        ],
        female: &[
            &["Maria"],
            &["Elena"],
            &["Ioana"],
            &["Ana"],
            &["Mihaela"],
            &["Andreea"],
            &["Cristina"],
            &["Gabriela"],
            &["Florentina"],
        ],
        family: &[
            &["Popescu"],
            &["Ionescu"],
            &["Popa"],
            &["Pop"],
            &["Radu"],
            &["Dumitru"],
            &["Stan"],
            &["Stoica"],
            &["Gheorghe"],
            &["Matei"],
            &["Ciobanu"],
            &["Rusu"],
            &["Munteanu"],
            &["Constantin"],
            &["Șerban", "Serban"],
            &["Moldovan"],
            &["Lungu"],
            &["Dinu"],
            &["Tudor"],
            &["Florea"],
        ],
    },
    Origin {
        countries: &["AL", "XK"],
        tail: [
            &[
                "Ho", "She", "Ko", "Le", "Ga", "Be", "Kra", "Der", "Baj", "Ra", "Du", "Mu", "Zy",
            ],
            &["", "ri", "sh", "ll", "ni", "qi", "vi"],
            &["a", "i", "aj", "u", "ku", "ri"],
        ],
        weight: 5,
        documented: 0.9,
        male: &[
            &["Arben"],
            &["Gentian"],
            &["Ilir"],
            &["Besnik"],
            &["Artan"],
            &["Ermal"],
            &["Fatmir"],
            &["Agron"],
        ],
        female: &[
            &["Elira"],
            &["Anila"],
            &["Blerina"],
            &["Mirela"],
            &["Valbona"],
        ],
        family: &[
            &["Hoxha", "Hodja"],
            &["Shehu"],
            &["Kola"],
            &["Leka"],
            &["Gashi"],
            &["Berisha"],
            &["Krasniqi", "Krasnici"],
            &["Dervishi"],
            &["Bajrami"],
            &["Rama"],
        ],
    },
    Origin {
        countries: &["NG", "SN", "GH", "ML", "GM"],
        tail: [
            &[
                "Di", "Nd", "Ok", "Ad", "Men", "Boa", "Kei", "Cou", "Cam", "Tou", "San", "Fo",
                "Ob", "Eze", "Ny",
            ],
            &["", "al", "ia", "on", "ey", "ib", "ou", "ak"],
            &[
                "lo", "iaye", "afor", "emi", "sah", "teng", "ta", "ba", "re", "neh", "ana", "ke",
            ],
        ],
        weight: 8,
        documented: 0.55,
        male: &[
            &["Chinedu"],
            &["Emeka"],
            &["Oluwaseun"],
            &["Ibrahima", "Ibrahim"],
            &["Mamadou", "Mamadu"],
            &["Moussa", "Musa"],
            &["Ousmane", "Usman", "Osman"],
            &["Abdoulaye", "Abdullahi"],
            &["Kwame"],
            &["Kofi"],
            &["Lamin", "Lamine"],
            &["Sekou"],
            &["Modou"],
        ],
        female: &[
            &["Aminata"],
            &["Fatou", "Fatu"],
            &["Awa"],
            &["Mariama", "Mariam"],
            &["Blessing"],
            &["Joy"],
            &["Precious"],
            &["Adama"],
        ],
        family: &[
            &["Diallo", "Jallow"],
            &["Ndiaye", "N'Diaye"],
            &["Diop"],
            &["Sow"],
            &["Traoré", "Traore"],
            &["Okafor"],
            &["Okonkwo"],
            &["Adeyemi"],
            &["Mensah"],
            &["Boateng"],
            &["Keita", "Keïta"],
            &["Coulibaly", "Kulibali"],
            &["Cissé", "Cisse"],
            &["Camara", "Kamara"],
            &["Touré", "Toure"],
            &["Bah", "Ba"],
            &["Jammeh"],
            &["Sanneh"],
            &["Ceesay", "Sise"],
            &["Fofana"],
        ],
    },
    Origin {
        countries: &["UA", "RU", "GE"],
        tail: [
            &[
                "Shev", "Kov", "Bon", "Tka", "Mel", "Boy", "Iva", "Pet", "Krav", "Mor", "Lys",
                "Sav", "Rud", "Hry", "Pol",
            ],
            &["", "al", "ar", "ch", "en", "ov", "ren"],
            &["enko", "chuk", "ov", "yk", "iuk", "ko", "ets"],
        ],
        weight: 5,
        documented: 0.9,
        male: &[
            &["Oleksandr", "Aleksandr", "Alexander"],
            &["Serhii", "Sergey", "Serhiy"],
            &["Mykola", "Nikolai"],
            &["Volodymyr", "Vladimir"],
            &["Andrii", "Andrey"],
            &["Dmytro", "Dmitry"],
            &["Yurii", "Yuri"],
        ],
        female: &[
            &["Olena", "Elena", "Yelena"],
            &["Natalia", "Natalya"],
            &["Iryna", "Irina"],
            &["Tetiana", "Tatiana", "Tatyana"],
            &["Svitlana", "Svetlana"],
            &["Oksana"],
            &["Halyna", "Galina"],
        ],
        family: &[
            &["Shevchenko"],
            &["Kovalenko"],
            &["Bondarenko"],
            &["Tkachenko"],
            &["Kovalchuk"],
            &["Melnyk", "Melnik"],
            &["Boyko", "Boiko"],
            &["Ivanov"],
            &["Petrenko"],
            &["Kravchenko"],
            &["Moroz"],
            &["Lysenko"],
            &["Savchenko"],
            &["Rudenko"],
        ],
    },
    Origin {
        countries: &["PK", "BD", "AF"],
        tail: [
            &[
                "Kh", "Ah", "Hus", "Rah", "Akh", "Iq", "Chow", "Kar", "Ahm", "Is", "Ud", "Sh",
                "Qur", "Siz", "Mal",
            ],
            &["", "an", "ma", "ta", "ba", "dh", "ir"],
            &[
                "an", "ed", "ain", "man", "tar", "bal", "ury", "imi", "zai", "lam", "din", "ik",
            ],
        ],
        weight: 7,
        documented: 0.6,
        male: &[
            &["Muhammad", "Mohammad", "Mohammed"],
            &["Imran"],
            &["Asif"],
            &["Bilal"],
            &["Tariq", "Tarik"],
            &["Rahim", "Raheem"],
            &["Abdul"],
            &["Shahid"],
            &["Zahid"],
            &["Farhan"],
            &["Hamid"],
            &["Rafiq", "Rafik"],
            &["Jahangir"],
            &["Sohel", "Sohail"],
        ],
        female: &[
            &["Ayesha", "Aisha"],
            &["Fatima"],
            &["Nasreen", "Nasrin"],
            &["Shabnam"],
            &["Rubina"],
            &["Farzana"],
        ],
        family: &[
            &["Khan"],
            &["Ahmed", "Ahmad"],
            &["Hussain", "Hossain", "Husain"],
            &["Rahman"],
            &["Ali"],
            &["Akhtar"],
            &["Iqbal"],
            &["Chowdhury", "Choudhury"],
            &["Karimi"],
            &["Ahmadzai"],
            &["Islam"],
            &["Uddin"],
            &["Miah", "Mia"],
            &["Sheikh", "Shaikh"],
            &["Begum"],
        ],
    },
];

/// A person of the synthetic population.
#[derive(Debug, Clone)]
pub struct Person {
    pub entity: u64,
    given: Name,
    family: Vec<String>,
    male: bool,
    year: u16,
    month: u8,
    day: u8,
    country: &'static str,
    documented: bool,
}

/// One registration of a person by some service, with its errors.
#[derive(Debug, Clone)]
pub struct Observation {
    pub entity: u64,
    pub record: LinkRecord,
}

pub struct Population {
    rng: ChaCha8Rng,
    pub people: Vec<Person>,
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

impl Population {
    pub fn new(seed: u64, size: usize) -> Population {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let total: u32 = ORIGINS.iter().map(|o| o.weight).sum();
        let people = (0..size as u64)
            .map(|entity| {
                let mut w = rng.random_range(0..total);
                let origin = ORIGINS
                    .iter()
                    .find(|o| {
                        if w < o.weight {
                            true
                        } else {
                            w -= o.weight;
                            false
                        }
                    })
                    .unwrap_or(&ORIGINS[0]);
                let male = rng.random_bool(0.72);
                let given = *pick(&mut rng, if male { origin.male } else { origin.female });
                let family: Vec<String> = if rng.random_bool(0.5) {
                    pick(&mut rng, origin.family)
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect()
                } else {
                    let [a, b, c] = origin.tail;
                    vec![format!(
                        "{}{}{}",
                        pick(&mut rng, a),
                        pick(&mut rng, b),
                        pick(&mut rng, c)
                    )]
                };
                Person {
                    entity,
                    given,
                    family,
                    male,
                    year: rng.random_range(1945..=2006),
                    month: rng.random_range(1..=12),
                    day: rng.random_range(1..=28),
                    country: origin.countries[rng.random_range(0..origin.countries.len())],
                    documented: rng.random_bool(origin.documented),
                }
            })
            .collect();
        Population { rng, people }
    }

    /// One registration of `person`, with realistic errors.
    pub fn observe(&mut self, person: &Person) -> Observation {
        let rng = &mut self.rng;
        fn spell<S: AsRef<str>>(rng: &mut ChaCha8Rng, name: &[S]) -> String {
            let s = if name.len() > 1 && rng.random_bool(0.35) {
                pick(rng, name)
            } else {
                &name[0]
            };
            let mut s = s.as_ref().to_owned();
            if rng.random_bool(0.10) {
                s = typo(rng, &s);
            }
            s
        }
        let mut given = Some(spell(rng, person.given));
        let mut family = Some(spell(rng, &person.family));
        if rng.random_bool(0.10) {
            std::mem::swap(&mut given, &mut family);
        }
        if rng.random_bool(0.02) {
            given = None;
        } else if rng.random_bool(0.02) {
            family = None;
        }
        let aliases = if rng.random_bool(0.04) {
            vec![person.given[0].to_owned()]
        } else {
            vec![]
        };
        let (mut year, mut month, mut day) = (person.year, person.month, person.day);
        let roll: f64 = rng.random();
        let mut placeholder = false;
        let birth_date = if !person.documented && roll < 0.35 {
            placeholder = true;
            Some(format!("{year:04}-01-01"))
        } else if roll < 0.04 {
            None
        } else if roll < 0.09 {
            Some(format!("{year:04}"))
        } else {
            let err: f64 = rng.random();
            if err < 0.03 {
                day = rng.random_range(1..=28);
            } else if err < 0.05 && day <= 12 {
                std::mem::swap(&mut day, &mut month);
            } else if err < 0.065 {
                year = if rng.random_bool(0.5) {
                    year + 1
                } else {
                    year - 1
                };
            }
            Some(format!("{year:04}-{month:02}-{day:02}"))
        };
        let sex = if rng.random_bool(0.02) {
            None
        } else {
            Some(if person.male { "male" } else { "female" }.to_owned())
        };
        let country = if rng.random_bool(0.05) {
            None
        } else {
            Some(person.country.to_owned())
        };
        Observation {
            entity: person.entity,
            record: LinkRecord {
                given_names: given,
                family_name: family,
                aliases,
                birth_date,
                birth_date_is_placeholder: placeholder,
                sex,
                country_of_birth: country,
            },
        }
    }

    /// Two registers (say, two ambiti) that each saw a share of the population; people seen by
    /// both appear in both with independent errors.
    pub fn two_registers(&mut self, share: f64) -> (Vec<Observation>, Vec<Observation>) {
        let people = self.people.clone();
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for p in &people {
            let (in_left, in_right) = (self.rng.random_bool(share), self.rng.random_bool(share));
            if in_left {
                left.push(self.observe(p));
            }
            if in_right {
                right.push(self.observe(p));
            }
        }
        (left, right)
    }
}

fn typo(rng: &mut ChaCha8Rng, s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if chars.len() < 3 {
        return s.to_owned();
    }
    let i = rng.random_range(1..chars.len() - 1);
    match rng.random_range(0..4) {
        0 => chars[i] = (b'a' + rng.random_range(0..26u8)) as char,
        1 => {
            chars.remove(i);
        }
        2 => chars.insert(i, chars[i]),
        _ => chars.swap(i, i + 1),
    }
    chars.into_iter().collect()
}

/// The CSV columns linkage reads: the schema's field names, plus the truth column.
pub const COLUMNS: [&str; 7] = [
    "given_names",
    "family_name",
    "aliases",
    "birth_date",
    "birth_date_is_placeholder",
    "sex",
    "country_of_birth",
];

/// Writes observations as CSV with an `entity_id` truth column.
pub fn write_csv(path: &std::path::Path, rows: &[Observation]) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(std::iter::once("entity_id").chain(COLUMNS))?;
    for o in rows {
        let r = &o.record;
        w.write_record([
            o.entity.to_string(),
            r.given_names.clone().unwrap_or_default(),
            r.family_name.clone().unwrap_or_default(),
            r.aliases.join(";"),
            r.birth_date.clone().unwrap_or_default(),
            r.birth_date_is_placeholder.to_string(),
            r.sex.clone().unwrap_or_default(),
            r.country_of_birth.clone().unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    Ok(())
}
