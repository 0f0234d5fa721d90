"""The product catalog of the demo distributor: twelve MRO families, about 2,000 SKUs.

Each family has product lines; a line has sizes (what a part must match to replace another) and
variants (grade, coating or brand, ranked from economy to premium). One SKU is one (line, size,
variant). SKUs of the same line and size are substitutes of each other: approved when the
substitute's variant ranks at least as high (a grade-8 bolt may replace a grade-5 one) and for
some economy equivalents one rank lower, not approved otherwise. Export-controlled SKUs follow the
usual suspects of an industrial catalog: thermal cameras faster than 9 Hz, high-frequency spectrum
analysers, high-resolution absolute encoders, contouring motion controllers and navigation-grade
gyroscopes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

__all__ = ["Line", "Family", "FAMILIES"]


class Line(NamedTuple):
    name: str
    sizes: tuple[str, ...]
    variants: tuple[str, ...]  # economy first
    pack: str
    base_price: float  # USD list price of the smallest size, economy variant
    controlled: Callable[[str, str], bool] | None = None


class Family(NamedTuple):
    prefix: str
    name: str
    target: int  # SKUs kept (sampled down when the lines yield more)
    typical_qty: float  # median quantity of an order line
    margin: tuple[float, float]
    lead_days: tuple[int, int]  # suppliers' lead time range
    demand: float  # relative order frequency of the family
    lines: tuple[Line, ...]


def _x(left: tuple[str, ...], right: tuple[str, ...], sep: str = " x ") -> tuple[str, ...]:
    return tuple(f"{a}{sep}{b}" for a in left for b in right)


BRANDS = ("Tarn", "Kestrel", "Valcor Premium")
INCH_THREADS = ("1/4-20", "5/16-18", "3/8-16", "1/2-13", "5/8-11", "3/4-10")

FAMILIES: tuple[Family, ...] = (
    Family("FAS", "Fasteners", 300, 6, (0.35, 0.45), (7, 21), 3.0, (
        Line("Hex Cap Screw", _x(INCH_THREADS, ("1 in", "1-1/2 in", "2 in", "2-1/2 in", "3 in")),
             ("Grade 5 Zinc", "Grade 8 Yellow Zinc", "18-8 Stainless"), "50/Box", 9.5),
        Line("Socket Head Cap Screw", _x(("M5", "M6", "M8", "M10", "M12", "M16"), ("16 mm", "25 mm", "40 mm")),
             ("Class 12.9 Black Oxide", "A2 Stainless", "A4 Stainless"), "100/Box", 14.0),
        Line("Hex Nut", (*INCH_THREADS, "M8", "M10", "M12"), ("Grade 5 Zinc", "Grade 8 Yellow Zinc",
             "18-8 Stainless"), "100/Box", 6.0),
        Line("Flat Washer", ("1/4 in", "5/16 in", "3/8 in", "1/2 in", "5/8 in", "3/4 in", "M8", "M10"),
             ("USS Zinc", "SAE Hardened", "18-8 Stainless"), "100/Box", 4.0),
        Line("Wedge Anchor", ("3/8 x 3 in", "1/2 x 4-1/4 in", "5/8 x 5 in", "3/4 x 6 in"),
             ("Zinc Plated", "Hot-Dip Galvanized", "304 Stainless"), "25/Box", 18.0),
        Line("All-Thread Rod, 6 ft", INCH_THREADS[:4], ("Low Carbon Zinc", "B7 Alloy", "18-8 Stainless"),
             "Each", 5.5),
        Line("Nylon Insert Lock Nut", (*INCH_THREADS, "M6", "M8", "M10"), ("Zinc", "18-8 Stainless"),
             "100/Box", 8.0),
        Line("Carriage Bolt", _x(INCH_THREADS[:4], ("2 in", "4 in")), ("Grade 2 Zinc", "Grade 5 Zinc"),
             "50/Box", 11.0),
        Line("Hex Lag Screw", _x(INCH_THREADS[:4], ("2 in", "3 in", "4 in", "6 in")), ("Zinc", "Hot-Dip Galvanized"),
             "50/Box", 13.0),
        Line("Pan Head Machine Screw", _x(("#6-32", "#8-32", "#10-24", "#10-32"), ("1/2 in", "3/4 in", "1 in")),
             ("Zinc", "18-8 Stainless"), "100/Box", 5.0),
    )),
    Family("BRG", "Bearings", 200, 4, (0.3, 0.42), (14, 45), 1.6, (
        Line("Deep Groove Ball Bearing", _x(("6200", "6201", "6202", "6203", "6204", "6205", "6206", "6207",
             "6208", "6300", "6302", "6304", "6305", "6306"), ("2RS", "ZZ", "OPEN"), "-"), BRANDS, "Each", 6.5),
        Line("Pillow Block Ball Bearing", ("UCP204-12 3/4 in", "UCP205-16 1 in", "UCP206-20 1-1/4 in",
             "UCP207-23 1-7/16 in", "UCP208-24 1-1/2 in", "UCP210-32 2 in"), ("Cast Iron",
             "Stainless Housing"), "Each", 24.0),
        Line("Tapered Roller Bearing Set", ("LM11949/10", "LM29749/10", "L44649/10", "LM67048/10",
             "LM48548/10", "HM88649/10"), BRANDS, "Each", 12.0),
        Line("Needle Roller Bearing", ("HK0808", "HK1010", "HK1612", "HK2020", "HK2520"),
             ("Kestrel", "Valcor Premium"), "Each", 4.5),
        Line("Spherical Roller Bearing", ("22208", "22210", "22212", "22215", "22218"),
             ("Kestrel", "Valcor Premium"), "Each", 140.0),
        Line("4-Bolt Flange Bearing", ("UCF204-12 3/4 in", "UCF205-16 1 in", "UCF206-20 1-1/4 in",
             "UCF207-23 1-7/16 in", "UCF208-24 1-1/2 in", "UCF210-32 2 in"), ("Cast Iron", "Stainless Housing"),
             "Each", 27.0),
        Line("Linear Ball Bushing", ("8 mm", "12 mm", "16 mm", "20 mm", "25 mm"), ("Kestrel", "Valcor Premium"),
             "Each", 9.0),
    )),
    Family("PTR", "Power Transmission", 180, 3, (0.3, 0.4), (10, 30), 1.3, (
        Line("V-Belt", ("A26", "A32", "A38", "A46", "A54", "A62", "B38", "B46", "B55", "B68", "B75", "B90",
             "4L300", "4L360", "4L420", "4L500"), ("Classical Wrapped", "Cogged Raw Edge"), "Each", 9.0),
        Line("Roller Chain, 10 ft", ("#35", "#40", "#50", "#60", "#80", "#100"),
             ("Riveted Carbon", "Nickel Plated", "O-Ring Sealed"), "Box", 38.0),
        Line("Plate Sprocket", _x(("40B12", "40B15", "40B18", "50B15", "50B20", "60B18", "60B24", "80B20"),
             ("5/8 in bore", "1 in bore"), " "), ("Finished Bore", "Hardened Teeth"), "Each", 21.0),
        Line("Jaw Coupling Hub", _x(("L-070", "L-075", "L-090", "L-095", "L-100", "L-110"),
             ("1/2 in", "5/8 in", "3/4 in", "1 in"), " "), ("Sintered Iron",), "Each", 11.0),
        Line("Right-Angle Gear Reducer", _x(("Size 13", "Size 15", "Size 18", "Size 21"),
             ("5:1", "10:1", "20:1", "40:1", "60:1"), " "), ("Cast Iron", "Washdown Stainless"), "Each", 310.0),
        Line("HTD Timing Belt", ("5M-450", "5M-600", "5M-800", "8M-640", "8M-800", "8M-1200", "8M-1600",
             "14M-1400"), ("Neoprene", "Polyurethane Kevlar"), "Each", 18.0),
        Line("Shaft Collar", _x(("1/2 in", "5/8 in", "3/4 in", "1 in", "1-1/4 in"), ("one-piece", "two-piece"),
             " "), ("Black Oxide", "Stainless"), "Each", 4.0),
    )),
    Family("ELE", "Electrical", 220, 5, (0.25, 0.38), (5, 21), 2.0, (
        Line("IEC Contactor 3P", _x(("9A", "12A", "18A", "25A", "32A", "40A", "50A", "65A"),
             ("24VDC coil", "120VAC coil", "240VAC coil"), " "), ("Volta", "Kestrel"), "Each", 38.0),
        Line("THHN Building Wire, 500 ft", _x(("14 AWG", "12 AWG", "10 AWG", "8 AWG", "6 AWG"),
             ("Black", "White", "Red", "Green", "Blue"), " "), ("Solid", "Stranded"), "Spool", 55.0),
        Line("DIN Rail Circuit Breaker", _x(("1P 10A", "1P 15A", "1P 20A", "2P 20A", "2P 30A", "3P 20A",
             "3P 40A"), ("C Curve", "D Curve"), " "), ("Volta", "Kestrel"), "Each", 16.0),
        Line("LED High Bay Fixture", _x(("100W", "150W", "200W", "240W"), ("4000K", "5000K"), " "),
             ("Standard", "Emergency Backup"), "Each", 120.0),
        Line("Liquid-Tight Flexible Conduit, 100 ft", ("3/8 in", "1/2 in", "3/4 in", "1 in", "1-1/4 in"),
             ("Non-Metallic", "Metallic"), "Coil", 48.0),
        Line("Cable Tie", _x(("4 in", "8 in", "11 in", "14 in"), ("Natural", "UV Black"), " "),
             ("Standard", "Heavy Duty"), "100/Bag", 3.5),
        Line("Inductive Proximity Sensor", _x(("M12 4 mm", "M18 8 mm", "M30 15 mm"), ("PNP NO", "NPN NO"), " "),
             ("Volta", "Kestrel"), "Each", 29.0),
        Line("Variable Frequency Drive", _x(("0.5 HP", "1 HP", "2 HP", "3 HP", "5 HP", "7.5 HP", "10 HP"),
             ("230V 1-Phase", "460V 3-Phase"), " "), ("Volta", "Kestrel"), "Each", 210.0),
        Line("DIN Rail Terminal Block", _x(("2.5 mm2", "4 mm2", "6 mm2", "10 mm2"), ("Gray", "Blue"), " "),
             ("Screw Clamp", "Push-In"), "50/Box", 28.0),
    )),
    Family("SAF", "Safety & PPE", 180, 8, (0.3, 0.42), (5, 14), 2.4, (
        Line("Nitrile Disposable Gloves", _x(("S", "M", "L", "XL", "2XL"), ("4 mil", "6 mil", "8 mil"), " "),
             ("Blue", "Black Heavy Duty"), "100/Box", 9.0),
        Line("Cut-Resistant Gloves", ("S", "M", "L", "XL"), ("ANSI A2", "ANSI A4", "ANSI A6"), "12 Pairs",
             42.0),
        Line("Safety Glasses", _x(("Clear", "Gray", "Amber", "Indoor/Outdoor"), ("Anti-Fog", "Anti-Scratch"),
             " "), BRANDS, "12/Box", 28.0),
        Line("Hard Hat, Type I Class E", _x(("White", "Yellow", "Orange", "Blue", "Red", "Green"),
             ("4-pt", "6-pt"), " "), ("Ratchet Suspension",), "Each", 14.0),
        Line("Hi-Vis Safety Vest, ANSI Class 2", _x(("M", "L", "XL", "2XL", "3XL"), ("Lime", "Orange"), " "),
             ("Mesh", "Solid"), "Each", 7.5),
        Line("N95 Disposable Respirator", ("Standard", "With Valve"), BRANDS, "20/Box", 24.0),
        Line("Foam Earplugs", _x(("Corded", "Uncorded"), ("NRR 29", "NRR 32", "NRR 33"), " "),
             ("Tarn", "Kestrel"), "200 Pairs", 31.0),
        Line("Full-Body Harness", _x(("S/M", "L/XL", "2XL"), ("Vest-Style", "Cross-Over"), " "),
             ("Pass-Thru Buckle", "Tongue Buckle"), "Each", 89.0),
        Line("Self-Retracting Lifeline", _x(("6 ft", "11 ft", "20 ft", "30 ft"), ("Web", "Cable"), " "),
             ("Standard",), "Each", 165.0),
        Line("First Aid Kit", _x(("25 Person", "50 Person", "100 Person"), ("ANSI Class A", "ANSI Class B"),
             " "), ("Standard",), "Each", 45.0),
        Line("Chemical Splash Goggles", ("Indirect Vent", "Non-Vented"), BRANDS, "Each", 8.0),
        Line("Welding Gloves", ("M", "L", "XL"), ("Split Cowhide", "Premium Goatskin"), "Pair", 11.0),
        Line("Face Shield", ("Clear 8 x 15.5 in", "Clear 9 x 15.5 in", "Green Shade 5"), ("Tarn", "Kestrel"),
             "Each", 12.0),
        Line("Disposable Coverall", ("M", "L", "XL", "2XL", "3XL"), ("SMS", "Microporous"), "25/Case", 96.0),
    )),
    Family("HYD", "Hydraulics", 150, 3, (0.28, 0.4), (10, 30), 1.1, (
        Line("2-Wire Hydraulic Hose, 50 ft", _x(("1/4 in", "3/8 in", "1/2 in", "5/8 in", "3/4 in", "1 in"),
             ("SAE 100R2AT", "4SP Spiral"), " "), ("Hydro-Line", "Valcor Premium"), "Reel", 140.0),
        Line("JIC 37 Degree Hose Fitting", _x(("-04", "-06", "-08", "-10", "-12", "-16"),
             ("Straight", "90 Elbow", "45 Elbow"), " "), ("Carbon Steel", "Stainless"), "Each", 6.0),
        Line("Tie-Rod Hydraulic Cylinder", _x(("1-1/2 in bore", "2 in bore", "2-1/2 in bore", "3 in bore",
             "4 in bore"), ("4 in stroke", "8 in stroke", "12 in stroke", "24 in stroke")),
             ("3000 psi", "3000 psi Welded"), "Each", 185.0),
        Line("Hydraulic Gear Pump", _x(("0.5 cu in/rev", "1.0 cu in/rev", "1.5 cu in/rev", "2.0 cu in/rev"),
             ("SAE A mount", "SAE B mount"), " "), ("Hydro-Line", "Valcor Premium"), "Each", 260.0),
        Line("D03 Directional Control Valve", _x(("4/3 Tandem Center", "4/3 Closed Center", "4/2 Spring Return"),
             ("12VDC", "24VDC", "120VAC"), " "), ("Hydro-Line", "Valcor Premium"), "Each", 150.0),
        Line("AW Hydraulic Oil, 5 gal", ("ISO 32", "ISO 46", "ISO 68"), ("Tarn", "Valcor Premium"), "Pail",
             62.0),
        Line("Return Line Filter Element", _x(("Size 1", "Size 2", "Size 3"), ("10 micron", "25 micron"), " "),
             ("Hydro-Line", "Valcor Premium"), "Each", 27.0),
    )),
    Family("PNE", "Pneumatics", 150, 4, (0.3, 0.42), (7, 21), 1.2, (
        Line("ISO 15552 Air Cylinder", _x(("32 mm bore", "40 mm bore", "50 mm bore", "63 mm bore",
             "80 mm bore"), ("50 mm stroke", "100 mm stroke", "160 mm stroke", "200 mm stroke")),
             ("Double Acting", "Double Acting Magnetic"), "Each", 78.0),
        Line("Push-to-Connect Fitting", _x(("4 mm", "6 mm", "8 mm", "10 mm", "12 mm", "1/4 in", "3/8 in"),
             ("Straight", "Elbow", "Tee", "Union"), " "), ("Composite", "Nickel-Plated Brass"), "10/Pack", 12.0),
        Line("5/2 Solenoid Valve", _x(("1/8 NPT", "1/4 NPT", "3/8 NPT"), ("24VDC", "120VAC"), " "),
             ("Single Solenoid", "Double Solenoid"), "Each", 64.0),
        Line("Filter-Regulator-Lubricator", ("1/4 NPT", "3/8 NPT", "1/2 NPT", "3/4 NPT"),
             ("Airflow", "Valcor Premium"), "Each", 95.0),
        Line("Polyurethane Tubing, 100 ft", _x(("4 mm", "6 mm", "8 mm", "10 mm", "12 mm", "1/4 in", "3/8 in",
             "1/2 in"), ("Blue", "Black", "Clear"), " "), ("Standard",), "Roll", 26.0),
        Line("Industrial Quick Coupler", ("1/4 in Industrial", "3/8 in Industrial", "1/4 in ARO", "3/8 in ARO"),
             ("Steel", "Brass"), "Each", 7.0),
        Line("Air Hose Reel", ("3/8 in x 50 ft", "1/2 in x 50 ft"), ("Hand Crank", "Spring Retract"), "Each",
             135.0),
    )),
    Family("CUT", "Cutting Tools", 180, 4, (0.32, 0.45), (7, 28), 1.4, (
        Line("Square Carbide End Mill", _x(("1/8 in", "3/16 in", "1/4 in", "5/16 in", "3/8 in", "1/2 in",
             "5/8 in", "3/4 in"), ("2 FL", "4 FL"), " "), ("Uncoated", "TiAlN", "AlTiN"), "Each", 18.0),
        Line("HSS Jobber Drill Bit", ("1/8 in", "5/32 in", "3/16 in", "7/32 in", "1/4 in", "5/16 in",
             "3/8 in", "7/16 in", "1/2 in"), ("Black Oxide", "TiN", "Cobalt M42"), "12/Pack", 14.0),
        Line("Turning Insert", _x(("CNMG 432", "CNMG 433", "DNMG 432", "WNMG 432", "TNMG 332", "VNMG 332"),
             ("Steel P25", "Stainless M30", "Cast Iron K20"), " "), ("Kestrel", "Valcor Premium"), "10/Box",
             68.0),
        Line("Spiral Point Tap", ("#6-32", "#8-32", "#10-24", "#10-32", "1/4-20", "5/16-18", "3/8-16",
             "1/2-13", "M6x1.0", "M8x1.25"), ("HSS", "HSS-E TiN"), "Each", 11.0),
        Line("Annular Cutter", _x(("9/16 in", "11/16 in", "13/16 in", "15/16 in", "1-1/16 in"),
             ("1 in DOC", "2 in DOC"), " "), ("HSS", "Carbide-Tipped"), "Each", 46.0),
        Line("Bi-Metal Bandsaw Blade", _x(("64-1/2 in", "93-1/2 in", "132 in"), ("10/14 TPI", "6/10 TPI",
             "4/6 TPI"), " "), ("Tarn", "Kestrel"), "Each", 22.0),
        Line("Hole Saw", ("3/4 in", "1 in", "1-1/4 in", "1-1/2 in", "2 in", "2-1/2 in"),
             ("Bi-Metal", "Carbide-Tipped"), "Each", 16.0),
    )),
    Family("ABR", "Abrasives", 120, 10, (0.35, 0.45), (7, 14), 2.0, (
        Line("Zirconia Flap Disc", _x(("4-1/2 in", "5 in", "7 in"), ("40 grit", "60 grit", "80 grit",
             "120 grit"), " "), ("Type 27", "Type 29"), "10/Pack", 48.0),
        Line("Cut-Off Wheel", ("4-1/2 x .045 in", "5 x .045 in", "6 x .045 in", "14 x 1/8 in"),
             ("Aluminum Oxide", "Ceramic"), "25/Pack", 39.0),
        Line("Type 27 Grinding Wheel", _x(("4-1/2 x 1/4 in", "7 x 1/4 in", "9 x 1/4 in"),
             ("Metal", "Stainless/INOX"), " "), ("Tarn", "Kestrel"), "10/Pack", 44.0),
        Line("Sanding Belt", _x(("1 x 30 in", "2 x 72 in", "4 x 36 in", "6 x 48 in"), ("36 grit", "60 grit",
             "80 grit", "120 grit"), " "), ("Aluminum Oxide", "Ceramic"), "10/Pack", 24.0),
        Line("Hook-and-Loop Sanding Disc", _x(("5 in", "6 in"), ("80 grit", "120 grit", "180 grit",
             "220 grit", "320 grit"), " "), ("Standard", "Multi-Hole"), "50/Box", 21.0),
        Line("Knotted Wire Wheel", ("4 in", "6 in"), ("Carbon Steel", "Stainless"), "Each", 17.0),
        Line("Surface Conditioning Disc", _x(("4-1/2 in", "5 in", "7 in"), ("Coarse", "Medium", "Very Fine"),
             " "), ("Quick-Change", "Hook-and-Loop"), "25/Box", 36.0),
    )),
    Family("JAN", "Janitorial", 100, 6, (0.3, 0.42), (3, 10), 1.5, (
        Line("Trash Can Liner", _x(("33 gal", "40-45 gal", "55-60 gal"), ("1.5 mil", "2 mil", "16 mic HD"),
             " "), ("Black", "Clear"), "100/Case", 34.0),
        Line("Hardwound Paper Towel", ("800 ft", "1000 ft"), ("Natural", "White"), "6 Rolls/Case", 42.0),
        Line("Industrial Degreaser", _x(("1 gal", "5 gal", "55 gal drum"), ("Water-Based", "Citrus",
             "Solvent-Based"), " "), ("CleanPro", "Valcor Premium"), "Each", 19.0),
        Line("Universal Absorbent Pad", ("15 x 19 in, 100/Bale", "15 x 19 in, 200/Bale"),
             ("Light Weight", "Heavy Weight"), "Bale", 52.0),
        Line("Wet Mop Head", _x(("16 oz", "24 oz", "32 oz"), ("Cotton", "Blend"), " "), ("CleanPro",),
             "12/Case", 48.0),
        Line("Foaming Hand Soap", ("1000 mL", "1200 mL"), ("Antibacterial", "Green Certified"), "2/Case",
             38.0),
        Line("Shop Towels", ("Red Cotton", "Blue Disposable"), ("Box", "Bag"), "500/Pack", 29.0),
        Line("Push Broom", _x(("18 in", "24 in", "36 in"), ("Fine", "Medium", "Coarse"), " "),
             ("Standard", "Heavy Duty"), "Each", 23.0),
        Line("Glass Cleaner", ("32 oz Ready-to-Use", "1 gal Concentrate"), ("CleanPro", "Valcor Premium"),
             "12/Case", 33.0),
        Line("Floor Finish", ("1 gal", "5 gal"), ("CleanPro", "Valcor Premium"), "Each", 27.0),
        Line("Toilet Tissue", ("2-Ply 500 Sheet", "Jumbo Roll 9 in"), ("Standard", "Premium"), "Case", 41.0),
        Line("Spill Kit", _x(("5 gal", "20 gal", "65 gal"), ("Universal", "Oil-Only", "Hazmat"), " "),
             ("Standard",), "Each", 58.0),
    )),
    Family("TST", "Test & Measurement", 100, 1, (0.2, 0.3), (10, 35), 0.5, (
        Line("True-RMS Digital Multimeter", _x(("CAT III 600V", "CAT IV 1000V"), ("Standard", "Logging"), " "),
             BRANDS, "Each", 120.0),
        Line("Clamp Meter", ("400A AC", "600A AC/DC", "1000A AC/DC"), BRANDS, "Each", 95.0),
        Line("Infrared Thermometer", ("12:1", "30:1", "50:1"), ("Metrix", "Valcor Premium"), "Each", 59.0),
        Line("Thermal Imaging Camera", _x(("160x120", "320x240", "640x480", "1024x768"),
             ("9 Hz", "30 Hz", "60 Hz"), " "), ("Metrix", "Valcor Premium"), "Each", 1450.0,
             lambda size, variant: not size.endswith(" 9 Hz")),
        Line("Digital Caliper", ("6 in", "8 in", "12 in"), ("IP54", "IP67 Coolant-Proof"), "Each", 38.0),
        Line("Outside Micrometer", _x(("0-1 in", "1-2 in", "2-3 in"), ("Mechanical", "Digital"), " "),
             ("Metrix",), "Each", 72.0),
        Line("Insulation Resistance Tester", ("1 kV", "5 kV", "10 kV"), ("Metrix", "Valcor Premium"),
             "Each", 640.0),
        Line("Spectrum Analyzer", ("3 GHz", "26.5 GHz", "44 GHz"), ("Metrix", "Valcor Premium"), "Each",
             5200.0, lambda size, variant: size != "3 GHz"),
        Line("Click Torque Wrench", ("1/4 in Dr 20-200 in-lb", "3/8 in Dr 20-100 ft-lb",
             "1/2 in Dr 50-250 ft-lb"), ("Tarn", "Valcor Premium"), "Each", 88.0),
        Line("Laser Distance Meter", ("165 ft", "330 ft"), ("Metrix", "Valcor Premium"), "Each", 89.0),
        Line("Sound Level Meter", ("Class 2", "Class 1"), ("Metrix", "Valcor Premium"), "Each", 260.0),
        Line("Vibration Meter", ("Overall Velocity", "Bearing Analysis"), ("Metrix", "Valcor Premium"), "Each",
             480.0),
        Line("Ultrasonic Thickness Gauge", ("Standard", "Thru-Paint"), ("Metrix", "Valcor Premium"), "Each",
             690.0),
    )),
    Family("MOT", "Motion Control", 100, 2, (0.22, 0.34), (21, 56), 0.6, (
        Line("Stepper Motor", _x(("NEMA 17", "NEMA 23", "NEMA 34"), ("standard torque", "high torque"), " "),
             ("Servotek", "Valcor Premium"), "Each", 42.0),
        Line("Stepper Drive", _x(("2 A", "5 A", "8 A"), ("24-48 VDC", "AC input"), " "),
             ("Servotek", "Valcor Premium"), "Each", 95.0),
        Line("AC Servo Motor", _x(("200 W", "400 W", "750 W", "1 kW", "2 kW"), ("with brake", "no brake"), " "),
             ("Servotek", "Valcor Premium"), "Each", 360.0),
        Line("AC Servo Drive", _x(("200 W", "400 W", "750 W", "1 kW", "2 kW"), ("Pulse/Analog", "EtherCAT"),
             " "), ("Servotek", "Valcor Premium"), "Each", 420.0),
        Line("Absolute Rotary Encoder", _x(("12-bit", "17-bit", "23-bit", "26-bit"),
             ("solid shaft", "hollow shaft"), " "), ("Servotek", "Valcor Premium"), "Each", 210.0,
             lambda size, variant: size.startswith(("23-bit", "26-bit"))),
        Line("Multi-Axis Motion Controller", ("2-axis", "4-axis", "8-axis"),
             ("Point-to-Point", "Contouring 5-Axis Interpolation"), "Each", 780.0,
             lambda size, variant: variant.startswith("Contouring")),
        Line("Navigation-Grade Fiber Optic Gyroscope", ("single-axis", "three-axis"),
             ("Servotek", "Valcor Premium"), "Each", 6900.0, lambda size, variant: True),
        Line("Profile Linear Guide Rail", ("15 mm x 500 mm", "20 mm x 1000 mm", "25 mm x 1000 mm"),
             ("Standard", "Precision"), "Each", 85.0),
    )),
)
