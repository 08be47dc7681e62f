"""The demo company: its people, regions, industries, names, products, personas, services and notes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from customers.models import Customer
from customers.roles import Role
from services.models import ServiceType

DEMO_PASSWORD = "cvm-demo"
DEFAULT_CHUNK_SIZE = 50_000
# Rows per COPY statement / executemany call: bounds the text block (~110 bytes a row).
WRITE_BATCH = 400_000
# Means per customer over three years of history with the default parameters (measured on
# 100k customers: 48.4 transaction lines and 9.9 service events). The volume options scale
# the purchase rate and the service rate by target / default, so the means are approximate
# (one-off buyers and the first purchase of each customer do not scale).
DEFAULT_TRANSACTIONS_PER_CUSTOMER = 48.0
DEFAULT_SERVICE_EVENTS_PER_CUSTOMER = 10.0


# --- the company ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoLogin:
    username: str
    first_name: str
    last_name: str
    role: Role

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


REPS = [
    DemoLogin("rep1", "Anna", "Becker", Role.SALES_REP),
    DemoLogin("rep2", "Jonas", "Weber", Role.SALES_REP),
    DemoLogin("rep3", "Lena", "Hoffmann", Role.SALES_REP),
    DemoLogin("rep4", "Tobias", "Schulz", Role.SALES_REP),
    DemoLogin("rep5", "Miriam", "Krüger", Role.SALES_REP),
]
INSIDE = DemoLogin("inside", "Sabine", "Vogel", Role.INSIDE_SALES)
MANAGER = DemoLogin("manager", "Martin", "Brandt", Role.MANAGER)
DEMO_LOGINS = [*REPS, INSIDE, MANAGER]

# Nielsen areas with their share of customers and the rep (index into REPS) covering them.
REGIONS = [
    ("North (Nielsen I)", 0.15, 0),
    ("North Rhine-Westphalia (Nielsen II)", 0.23, 1),
    ("Hesse, Rhineland-Palatinate, Saarland (Nielsen IIIa)", 0.14, 2),
    ("Baden-Württemberg (Nielsen IIIb)", 0.19, 3),
    ("Bavaria (Nielsen IV)", 0.18, 4),
    ("East (Nielsen V-VII)", 0.11, 0),
]
INDUSTRIES = [
    ("Mechanical engineering", 0.22),
    ("Automotive supplier", 0.18),
    ("Metalworking", 0.16),
    ("Chemicals and plastics", 0.10),
    ("Food and beverage", 0.09),
    ("Packaging", 0.09),
    ("Medical technology", 0.08),
    ("Energy and utilities", 0.08),
]
CHANNELS = [  # acquisition channels other than referral, with their shares
    (Customer.Channel.DIRECT_SALES, 0.45),
    (Customer.Channel.TRADE_FAIR, 0.18),
    (Customer.Channel.ONLINE, 0.14),
    (Customer.Channel.PARTNER, 0.13),
    (Customer.Channel.OTHER, 0.10),
]
REFERRAL_SHARE = 0.16

FAMILY_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Meyer", "Wagner", "Becker", "Hoffmann", "Schäfer",
    "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
    "Braun", "Hofmann", "Hartmann", "Lange", "Krause", "Lehmann", "Köhler", "Herrmann", "König",
    "Walter", "Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn",
    "Vogt", "Friedrich", "Keller", "Günther", "Frank", "Berger", "Roth", "Beck", "Lorenz",
    "Baumann", "Kraus", "Böhm", "Simon", "Franke", "Albrecht", "Winter", "Ludwig", "Kessler",
    "Haas", "Sommer", "Brandt", "Seidel", "Heinrich", "Dietrich", "Engel", "Horn", "Busch",
]
NAME_HEADS = [
    "Nord", "Süd", "West", "Ost", "Rhein", "Main", "Elb", "Isar", "Alp", "Harz", "Ruhr", "Donau",
    "Tech", "Metall", "Stahl", "Form", "Präzi", "Pro", "Inno", "Hydro", "Therm", "Flex", "Poly",
    "Mega", "Uni", "Delta", "Omni", "Terra", "Saxo", "Weser",
]
NAME_TAILS = [
    "werk", "tec", "tronic", "form", "plast", "mat", "tech", "guss", "bau", "con", "dyn", "fix",
    "line", "pack", "med", "chem", "tool", "motion", "flow", "cut",
]
TRADES = [
    "Maschinenbau", "Antriebstechnik", "Kunststofftechnik", "Präzisionsteile", "Anlagenbau",
    "Fördertechnik", "Automation", "Oberflächentechnik", "Metallverarbeitung", "Verpackungstechnik",
    "Lebensmitteltechnik", "Medizintechnik", "Stanztechnik", "Gießerei", "Werkzeugbau", "Energietechnik",
]
LEGAL_FORMS = [
    ("GmbH", 0.50), ("GmbH & Co. KG", 0.16), ("AG", 0.08), ("KG", 0.07), ("e.K.", 0.05),
    ("OHG", 0.03), ("SE", 0.02), ("UG (haftungsbeschränkt)", 0.03), ("Ltd", 0.04), ("S.à r.l.", 0.02),
]

# Product lines: category share of lines, value multiplier, margin offset, products, channels.
CATEGORIES = [
    ("machine", 0.015, 16.0, -0.10, [
        "CNC machining centre", "Hydraulic press", "Compressor unit", "Conveyor system",
        "Laser cutting system", "Industrial robot cell",
    ]),
    ("spare_part", 0.35, 1.2, 0.08, [
        "Spindle bearing set", "Hydraulic pump", "Servo motor", "Control board", "Seal kit",
        "Linear guide", "Ball screw", "Frequency inverter", "Proximity sensor", "Gearbox",
    ]),
    ("consumable", 0.555, 0.45, 0.02, [
        "Cutting inserts", "Cooling lubricant 200 l", "Filter cartridges", "Grinding wheels",
        "Hydraulic oil 20 l", "Welding wire", "Drill set", "Protective gloves", "Cleaning agent",
    ]),
    ("service_contract", 0.08, 2.5, 0.10, [
        "Maintenance contract", "Full-service contract", "Calibration contract",
    ]),
]
SALES_CHANNELS = ["field sales", "inside sales", "webshop", "EDI", "phone/fax"]
# Per category: probability of each sales channel (consumables come by webshop and EDI).
SALES_CHANNEL_SHARES = np.array([
    [0.80, 0.15, 0.00, 0.00, 0.05],
    [0.15, 0.40, 0.20, 0.10, 0.15],
    [0.05, 0.20, 0.40, 0.25, 0.10],
    [0.70, 0.25, 0.00, 0.00, 0.05],
])

# Monthly season of spend (Jan..Dec): summer shutdown in August, holidays in December.
SEASON = np.array([0.95, 1.05, 1.18, 1.15, 1.10, 1.00, 0.90, 0.62, 1.05, 1.16, 1.10, 0.72])

# --- personas: the four segments -----------------------------------------------------------
UNCRITICAL, SPOILED, POTENTIAL, INVESTMENT = range(4)
PERSONA_SHARES = np.array([0.40, 0.22, 0.20, 0.18])
PURCHASE_RATE_FACTOR = np.array([0.65, 1.0, 1.35, 1.35])
SPEND_FACTOR = np.array([0.6, 0.3, 1.9, 1.7])
MARGIN_RATE_MEAN = np.array([0.29, 0.12, 0.33, 0.30])
# Free services per active year, and how much longer each one takes.
SERVICE_RATE = np.array([3.3, 17.5, 1.3, 10.0])
SERVICE_QUANTITY_FACTOR = np.array([1.0, 1.3, 0.9, 1.2])
# Share of each service type per persona, in catalogue order.
SERVICE_CODES = [
    "inside_sales_help", "technical_tip", "training", "market_information", "order_change",
    "commissioning", "hotline", "remote_optimisation", "joint_market_research", "joint_development",
]
SERVICE_MIX = np.array([
    [0.20, 0.25, 0.01, 0.10, 0.25, 0.01, 0.17, 0.01, 0.00, 0.00],  # uncritical
    [0.17, 0.20, 0.06, 0.06, 0.19, 0.02, 0.26, 0.04, 0.00, 0.00],  # spoiled
    [0.20, 0.26, 0.02, 0.15, 0.20, 0.02, 0.13, 0.02, 0.00, 0.00],  # check potential
    [0.07, 0.12, 0.16, 0.08, 0.06, 0.12, 0.10, 0.16, 0.05, 0.08],  # investment
])
# Services inside sales logs itself; the rest the customer's rep logs after a visit.
INSIDE_LOGGED = {"inside_sales_help", "technical_tip", "market_information", "order_change", "hotline"}
# (prefix, suffix, lowest number, highest number): one number makes each note specific.
NOTE_TEMPLATES = {
    "inside_sales_help": [
        ("Researched replacement for discontinued part no. ", " and sent quote", 10000, 99999),
        ("Compared ", " supplier offers for the customer's purchasing", 2, 6),
        ("Prepared customs papers for export order ", "", 40000, 49999),
        ("Checked stock at ", " warehouses for an urgent delivery", 2, 5),
    ],
    "technical_tip": [
        ("Advised on cutting speed for stainless steel, insert grade P", "", 10, 40),
        ("Explained lubrication interval for spindle, model S-", "", 100, 999),
        ("Tip: lower hydraulic pressure to ", " bar to stop valve chatter", 80, 180),
        ("Sent setup sheet for tool holder HSK-", "", 32, 100),
    ],
    "training": [
        ("Operator training on machining centre, ", " participants", 3, 12),
        ("Maintenance seminar for ", " shift leaders", 2, 8),
        ("Safety training for new press line, ", " staff", 4, 15),
    ],
    "market_information": [
        ("Passed on steel price outlook for Q", "", 1, 4),
        ("Informed about new machinery directive, annex ", "", 1, 12),
        ("Shared energy price study for ", " plants in the region", 3, 20),
    ],
    "order_change": [
        ("Changed delivery date of order ", " at short notice", 200000, 299999),
        ("Split order ", " into two deliveries", 200000, 299999),
        ("Changed quantity on order line ", " after release", 1, 40),
        ("New delivery address for order ", "", 200000, 299999),
    ],
    "commissioning": [
        ("Commissioned conveyor system, line ", "", 1, 9),
        ("Commissioning of compressor unit, serial ", "", 10000, 99999),
        ("Started up hydraulic press at plant ", "", 1, 6),
    ],
    "hotline": [
        ("Hotline: spindle alarm E-", " after maintenance", 100, 999),
        ("Hotline: hydraulic pressure drop on line ", "", 1, 9),
        ("Hotline: controller lost parameters after power cut, machine M-", "", 100, 999),
        ("Hotline: conveyor stops at station ", ", sensor adjusted", 1, 30),
        ("Hotline: coolant pump error code ", "", 10, 99),
    ],
    "remote_optimisation": [
        ("Remote optimisation of cycle time on machine M-", "", 100, 999),
        ("Remote check of compressor energy use, ", " % saving found", 3, 18),
        ("Remote update of robot programme, cell ", "", 1, 12),
    ],
    "joint_market_research": [
        ("Joint survey of ", " end customers on tooling needs", 20, 200),
        ("Workshop on market entry, country ", " of the shortlist", 1, 5),
    ],
    "joint_development": [
        ("Joint development: prototype gripper, iteration ", "", 1, 9),
        ("Lead-user test of new filter system, batch ", "", 1, 20),
        ("Co-design of fixture for part family ", "", 100, 999),
    ],
}
# Unit of measure -> quantity steps (hours in quarters, days in halves, occurrences whole).
UNIT_STEP = {ServiceType.Unit.HOUR: (0.25, 4.0), ServiceType.Unit.DAY: (0.5, 3.0), ServiceType.Unit.OCCURRENCE: (1, 3)}

# A mid-history price change of the services that got dearer, in percent.
COST_CHANGE_MONTHS_BEFORE = 18
COST_CHANGE_PERCENT = {
    "hotline": 12, "technical_tip": 10, "training": 8, "commissioning": 15,
    "remote_optimisation": 9, "inside_sales_help": 11,
}
