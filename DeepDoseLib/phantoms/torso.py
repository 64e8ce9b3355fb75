"""Procedural torso (MIRD/XCAT-like analytic organs) from the upper thighs to the jaw, LPS millimetres.

Organs are ellipsoids, capsules, plates and rings in a nominal adult template (z = 0 at the upper
thighs, jaw at z ≈ 860 mm; x right → left, y anterior → posterior). Anatomical variation comes from
per-axis body scaling, subcutaneous fat thickness, per-organ size and position, bladder filling, a
smooth random elastic deformation and random gas in stomach and bowel; tumours are added by
:mod:`DeepDoseLib.phantoms.lesions`. Everything is vectorised numpy and evaluated only in each
shape's bounding box (a 4 mm torso takes about a second).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import DeepDoseInputError
from .anatomy import Anatomy, label_info_for
from .canvas import Canvas, Region, rotation_matrix
from .labels import LABEL_VALUES as L
from .smooth import smooth_noise, smooth_displacement

#: Lean-body (outer muscle surface) cross-section along z: z, semi-axis x, semi-axis y, centre y [mm].
_LEAN = np.array([
    (-40, 150, 95, 8), (0, 150, 95, 8), (60, 152, 98, 8), (150, 150, 95, 8), (230, 140, 88, 5), (300, 132, 85, 5),
    (380, 136, 88, 5), (480, 145, 95, 3), (600, 150, 98, 3), (690, 145, 92, 8), (722, 110, 75, 12),
    (742, 52, 50, 15), (800, 50, 50, 10), (840, 66, 66, -5), (900, 74, 80, -5)], dtype=np.float64)
#: Spine: z, centre y of the vertebral body, semi-axes x and y of the body [mm].
_SPINE = np.array([(200, 64, 25, 18), (300, 55, 24, 18), (400, 58, 22, 17), (500, 66, 19, 15), (600, 72, 18, 15),
                   (700, 68, 16, 13), (760, 45, 13, 10), (830, 35, 12, 10)], dtype=np.float64)
Z_TOP_mm = 880.0
NECK_Z_mm, HEAD_Z_mm = 725.0, 800.0
#: Organs whose size varies per case (linear scale factor about their own centre).
VARIABLE_ORGANS = ("liver", "spleen", "kidneys", "heart", "lungs", "stomach", "pancreas", "thyroid",
                   "parotids", "submandibular_glands")


@dataclass
class TorsoParameters:
    """Anatomical parameters of one procedural torso (template mm unless stated).

    ``scale`` (x, y, z) scales the whole body; ``organ_scale`` the linear size of single organs;
    ``organ_shift_mm`` moves them; the elastic deformation has RMS amplitude ``deformation_mm`` per
    component and correlation length ``deformation_length_mm``.
    """

    scale: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    fat_mm: float = 18.0
    muscle_mm: float = 12.0
    organ_scale: Dict[str, float] = field(default_factory=dict)
    organ_shift_mm: Dict[str, Tuple[float, float, float]] = field(default_factory=dict)
    bladder_volume_mL: float = 200.0
    deformation_mm: float = 0.0
    deformation_length_mm: float = 90.0
    stomach_gas: bool = True
    bowel_gas_fraction: float = 0.06
    bowel_fill_fraction: float = 0.55
    seed: int = 0
    family: str = "standard"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["organ_shift_mm"] = {k: [round(float(c), 2) for c in v] for k, v in self.organ_shift_mm.items()}
        d["organ_scale"] = {k: round(float(v), 4) for k, v in self.organ_scale.items()}
        return d


def sample_torso_parameters(rng: np.random.Generator, family: str = "standard") -> TorsoParameters:
    """Random anatomy. ``standard``: the training family; ``heldout``: habitus and deformations outside
    the standard ranges (thin/obese, wide/narrow, stronger deformation) for evaluation on unseen anatomy."""
    if family not in ("standard", "heldout"):
        raise DeepDoseInputError(f"Unknown torso family {family!r}: use 'standard' or 'heldout'.")
    if family == "standard":
        scale = (rng.uniform(0.9, 1.1), rng.uniform(0.88, 1.12), rng.uniform(0.92, 1.08))
        fat, organ_sd, deform = rng.uniform(8, 32), 0.05, rng.uniform(2, 6)
    else:
        side = rng.choice([-1.0, 1.0])
        scale = (1.0 + side * rng.uniform(0.11, 0.18), 1.0 + side * rng.uniform(0.12, 0.2), rng.uniform(0.9, 1.1))
        fat, organ_sd, deform = (rng.uniform(33, 45) if side > 0 else rng.uniform(3, 7)), 0.08, rng.uniform(6, 9)
    organ_scale = {o: float(np.clip(np.exp(rng.normal(0, organ_sd)), 0.9, 1.11)) for o in VARIABLE_ORGANS}
    shifts = {o: tuple(float(v) for v in np.clip(rng.normal(0, 4.0, 3), -8, 8)) for o in VARIABLE_ORGANS}
    return TorsoParameters(
        scale=tuple(float(s) for s in scale), fat_mm=float(fat), muscle_mm=float(rng.uniform(9, 15)),
        organ_scale=organ_scale, organ_shift_mm=shifts,
        bladder_volume_mL=float(np.clip(np.exp(rng.normal(np.log(180), 0.5)), 50, 500)),
        deformation_mm=float(deform), stomach_gas=bool(rng.random() < 0.7),
        bowel_gas_fraction=float(rng.uniform(0.02, 0.12)), bowel_fill_fraction=float(rng.uniform(0.45, 0.65)),
        seed=int(rng.integers(0, 2**31 - 1)), family=family)


class _Torso:
    """Paints the organs of one torso onto a :class:`Canvas` (painting order = priority)."""

    def __init__(self, p: TorsoParameters, canvas: Canvas, rng: np.random.Generator) -> None:
        self.p, self.c, self.rng = p, canvas, rng

    # --- helpers -----------------------------------------------------------------------------------
    def _s(self, organ: str) -> float:
        """Linear organ scale: its own factor × half of the body scaling's effect on volume undone
        (organ volumes correlate only weakly with body size)."""
        return self.p.organ_scale.get(organ, 1.0) / float(np.prod(self.c.scale)) ** (1.0 / 6.0)

    def _at(self, organ: str, centre: Sequence[float]) -> Tuple[float, float, float]:
        d = self.p.organ_shift_mm.get(organ, (0.0, 0.0, 0.0))
        return (centre[0] + d[0], centre[1] + d[1], centre[2] + d[2])

    def _ellipsoid(self, label: int, centre, axes, rot=None, **paint) -> Optional[Region]:
        ext = max(axes)
        reg = self.c.region([centre[0] - ext, centre[1] - ext, centre[2] - ext],
                            [centre[0] + ext, centre[1] + ext, centre[2] + ext])
        if reg is not None:
            self.c.paint(reg, reg.ellipsoid(centre, axes, rot) <= 1.0, label, **paint)
        return reg

    def _capsules(self, label: int, points, radius: float, **paint) -> None:
        for a, b in zip(points[:-1], points[1:]):
            lo = np.minimum(a, b) - radius
            hi = np.maximum(a, b) + radius
            reg = self.c.region(lo, hi)
            if reg is not None:
                self.c.paint(reg, reg.capsule(a, b) <= radius, label, **paint)

    @staticmethod
    def _profile(z: np.ndarray, table: np.ndarray, column: int) -> np.ndarray:
        return np.interp(z, table[:, 0], table[:, column]).astype(np.float32)

    # --- body wall -----------------------------------------------------------------------------------
    def body(self) -> None:
        p = self.p
        reg = self.c.region([-200, -160, -40], [200, 160, Z_TOP_mm])
        ax, ay, cy = (self._profile(reg.z0, _LEAN, i) for i in (1, 2, 3))
        neck = reg.z >= NECK_Z_mm
        fat = np.where(neck, 0.35 * p.fat_mm, p.fat_mm).astype(np.float32)
        r_out = ((reg.x / (ax + fat)) ** 2 + ((reg.y - cy) / (ay + fat)) ** 2)
        r_lean = (reg.x / ax) ** 2 + ((reg.y - cy) / ay) ** 2
        wall = np.where(neck, 0.0, p.muscle_mm).astype(np.float32)
        r_cav = (reg.x / np.maximum(ax - wall, 1)) ** 2 + ((reg.y - cy) / np.maximum(ay - wall, 1)) ** 2
        inside_z = (reg.z >= -40) & (reg.z <= Z_TOP_mm)
        self.c.paint(reg, (r_out <= 1) & inside_z, L["fat"])
        self.c.paint(reg, (r_lean <= 1) & inside_z, L["muscle"])
        cavity = (r_cav <= 1) & inside_z & ~neck
        self.c.paint(reg, cavity, L["fat"])
        self.c.paint(reg, (r_lean <= 0.85) & (reg.z >= HEAD_Z_mm), L["soft_tissue"])
        self.ribs_and_sternum(reg, ax - wall, ay - wall, cy)

    def ribs_and_sternum(self, reg: Region, ax, ay, cy) -> None:
        rho = np.sqrt((reg.x / (ax + 4)) ** 2 + ((reg.y - cy) / (ay + 4)) ** 2)
        ring = (rho <= 1.0) & (rho >= 1.0 - 11.0 / ax)
        w = reg.z - 0.4 * (reg.y - cy)
        band = (np.mod(w, 24.0) < 11.0) & (w > 440) & (w < 700) & (reg.z < 715)
        anterior_gap = (np.abs(reg.x) < 28) & (reg.y < cy)
        costal_margin = (w < 500) & (reg.y < cy - 25)
        self._rib_mask = ring & band & ~anterior_gap & ~costal_margin
        self._rib_region = reg
        y_front = float(-(np.interp(615, _LEAN[:, 0], _LEAN[:, 2]) - self.p.muscle_mm) + 9)
        self._sternum = ((0.0, y_front, 615.0), (18.0, 7.0, 85.0))

    def muscles(self) -> None:
        fat = [L["fat"]]
        for side in (-1, 1):
            self._ellipsoid(L["muscle"], (side * 85, 62, 110), (62, 38, 80), only=fat)           # gluteal
            self._capsules(L["muscle"], [(side * 33, 45, 395), (side * 55, 35, 250), (side * 72, 5, 100)], 17,
                           only=fat)                                                              # psoas
            pts = [(side * 38, 64 + 42, 180), (side * 38, 55 + 44, 330), (side * 38, 66 + 42, 500),
                   (side * 36, 72 + 40, 650), (side * 32, 60 + 35, 740)]
            self._capsules(L["muscle"], pts, 22, only=fat)                                        # erector spinae

    # --- thorax ----------------------------------------------------------------------------------------
    def lungs(self) -> None:
        s = self._s("lungs")
        for name, side, dome in (("lung_right", -1, 488.0), ("lung_left", 1, 474.0)):
            centre = self._at("lungs", (side * 78, 8, 600))
            axes = (62 * s, 85 * s, 140 * s)
            reg = self.c.region([centre[0] - axes[0], centre[1] - axes[1], dome - 20],
                                [centre[0] + axes[0], centre[1] + axes[1], centre[2] + axes[2]])
            q = reg.ellipsoid(centre, axes)
            base = dome + 22 * (1 - ((reg.x - side * 78) / 85) ** 2) - 0.25 * np.maximum(reg.y - 20, 0)
            mask = (q <= 1) & (reg.z >= base) & (side * reg.x > 20)
            self.c.paint(reg, mask, L[name], only=[L["fat"]])
        self._capsules(L["airways"], [(0, -8, 610), (0, -12, 700), (0, -14, 780), (0, 2, 880)], 9,
                       only=[L["fat"], L["muscle"], L["soft_tissue"], L["lung_left"], L["lung_right"]])
        for side in (-1, 1):
            self._capsules(L["airways"], [(0, -6, 612), (side * 38, 4, 585)], 6,
                           only=[L["fat"], L["lung_left"], L["lung_right"]])

    def heart_and_vessels(self) -> None:
        s = self._s("heart")
        centre = self._at("heart", (22, -22, 545))
        self._ellipsoid(L["heart"], centre, (56 * s, 46 * s, 64 * s), rotation_matrix(0, 35, -30),
                        only=[L["fat"], L["lung_left"], L["lung_right"]])
        vessels = [L["fat"], L["lung_left"], L["lung_right"], L["muscle"]]
        self._capsules(L["great_vessels"], [(12, 32, 235), (16, 36, 400), (18, 42, 560), (5, -5, 625),
                                            (-10, -22, 585)], 12, only=vessels)           # aorta
        self._capsules(L["great_vessels"], [(-24, 30, 235), (-26, 20, 470), (-22, 0, 505)], 11,
                       only=vessels + [L["liver"]])                                       # inferior vena cava
        for side in (-1, 1):
            self._capsules(L["great_vessels"], [(side * 12, 32, 238), (side * 55, 28, 150)], 7, only=vessels)

    # --- abdomen -------------------------------------------------------------------------------------------
    def bowel(self) -> None:
        p = self.p
        reg = self.c.region([-130, -85, 130], [130, 65, 370])
        region_mask = reg.ellipsoid((0, -12, 250), (125, 70, 118)) <= 1.0
        g = smooth_noise(region_mask.shape, sigma_vox=7.0 / float(np.mean(self.c.spacing)), rng=self.rng)
        t = float(np.quantile(np.abs(g[region_mask]), p.bowel_fill_fraction)) if region_mask.any() else 0.0
        loops = region_mask & (np.abs(g) <= t)
        self.c.paint(reg, loops, L["bowel"], only=[L["fat"]])
        colon = [[(-100, 0, 225), (-100, -5, 360), (-60, -45, 372), (0, -55, 345), (60, -45, 380), (100, 0, 385),
                  (100, 10, 220), (45, 25, 150), (0, 45, 125)]]
        for pts in colon:
            self._capsules(L["bowel"], pts, 20, only=[L["fat"], L["muscle"]])
        g2 = smooth_noise(region_mask.shape, sigma_vox=5.0 / float(np.mean(self.c.spacing)), rng=self.rng)
        target = self.c.labels[reg.slices]
        bowel = target == L["bowel"]
        if bowel.any() and p.bowel_gas_fraction > 0:
            thr = float(np.quantile(g2[bowel], 1.0 - p.bowel_gas_fraction))
            self.c.paint(reg, bowel & (g2 > thr), L["gastrointestinal_gas"])

    def upper_abdomen(self) -> None:
        soft = [L["fat"], L["lung_left"], L["lung_right"], L["bowel"], L["gastrointestinal_gas"], L["muscle"]]
        s = self._s("liver")
        centre = self._at("liver", (-52, 5, 428))
        axes = (91 * s, 74 * s, 64 * s)
        rot = rotation_matrix(0, -12, 0)
        reg = self.c.region(np.subtract(centre, 100 * s), np.add(centre, 100 * s))
        lx, ly, lz = reg.local(centre, rot)
        liver = (reg.ellipsoid(centre, axes, rot) <= 1) & (lx < 0.88 * axes[0]) & (lz > -0.75 * axes[2] + 0.35 * lx)
        self.c.paint(reg, liver, L["liver"], only=soft)
        s = self._s("spleen")
        self._ellipsoid(L["spleen"], self._at("spleen", (92, 45, 445)), (20 * s, 37 * s, 45 * s),
                        rotation_matrix(0, 0, 30), only=soft)
        s = self._s("stomach")
        centre = self._at("stomach", (52, -25, 448))
        axes = (48 * s, 37 * s, 66 * s)
        rot = rotation_matrix(0, -30, 0)
        reg = self._ellipsoid(L["stomach"], centre, axes, rot, only=soft)
        if self.p.stomach_gas and reg is not None:
            lx, ly, lz = reg.local(centre, rot)
            gas = (reg.ellipsoid(centre, axes, rot) <= 1) & (lz > 0.55 * axes[2])
            self.c.paint(reg, gas, L["gastrointestinal_gas"], only=[L["stomach"]])
        s = self._s("pancreas")
        d = self.p.organ_shift_mm.get("pancreas", (0, 0, 0))
        self._capsules(L["pancreas"], [np.add((-28, 8, 368), d), np.add((-10, 12, 376), d)], 22 * s, only=soft)
        self._capsules(L["pancreas"], [np.add((-10, 12, 376), d), np.add((25, 18, 388), d), np.add((78, 36, 405), d)],
                       15 * s, only=soft)
        s = self._s("kidneys")
        for side, name, z in ((-1, "right", 330.0), (1, "left", 345.0)):
            centre = self._at("kidneys", (side * 68, 50, z))
            axes = (27 * s, 24 * s, 55 * s)
            rot = rotation_matrix(20, side * -15, side * 20)
            reg = self._ellipsoid(L[f"kidney_{name}_cortex"], centre, axes, rot, keep=[L["spine"]])
            if reg is not None:
                lx, ly, lz = reg.local(centre, rot)
                inner = (lx / (axes[0] - 8)) ** 2 + (ly / (axes[1] - 8)) ** 2 + (lz / (axes[2] - 11)) ** 2 <= 1
                hilum = (side * lx < 0) & ((ly / (axes[1] - 9)) ** 2 + (lz / (axes[2] - 25)) ** 2 <= 1) & \
                        (reg.ellipsoid(centre, axes, rot) <= 1)
                self.c.paint(reg, inner | hilum, L[f"kidney_{name}_medulla"], only=[L[f"kidney_{name}_cortex"]])

    def bladder(self) -> None:
        shape = np.array([1.25, 0.95, 0.85])
        radius = (3 * self.p.bladder_volume_mL * 1000 / (4 * np.pi)) ** (1 / 3)
        axes = radius * shape / np.prod(shape) ** (1 / 3)
        # convert the wanted world volume to template axes (the body scale stretches the template)
        axes = axes / np.cbrt(np.prod(self.c.scale))
        centre = (0.0, -14.0, 84.0 + axes[2])  # behind the pubic symphysis, base above the pelvic floor
        self._ellipsoid(L["urinary_bladder"], centre, tuple(axes),
                        only=[L["fat"], L["bowel"], L["gastrointestinal_gas"], L["muscle"], L["soft_tissue"]])

    # --- skeleton ---------------------------------------------------------------------------------------------
    def spine(self) -> None:
        reg = self.c.region([-60, -20, 195], [60, 160, 845])
        ys, ax, ay = (self._profile(reg.z0, _SPINE, i) for i in (1, 2, 3))
        body = (reg.x / ax) ** 2 + ((reg.y - ys) / ay) ** 2 <= 1
        canal_y = ys + ay + 8
        canal_r = np.where(reg.z > 730, 7.0, 8.5).astype(np.float32)
        r_canal = np.sqrt(reg.x ** 2 + (reg.y - canal_y) ** 2)
        arch = (r_canal <= canal_r + 7) & (r_canal > canal_r)
        spinous = (np.abs(reg.x) <= 5) & (reg.y > canal_y) & (reg.y < canal_y + np.where(reg.z > 730, 22, 34))
        transverse = (np.abs(reg.x) <= ax + 16) & (np.abs(reg.y - canal_y + 4) <= 4)
        zc = np.array([195, 380, 690, 845], dtype=np.float64)
        pitch = np.array([34.0, 34.0, 26.0, 18.0])
        phase_at = np.concatenate([[0.0], np.cumsum(np.diff(zc) / pitch[:-1])])
        phase = np.interp(reg.z, zc, phase_at).astype(np.float32)
        disc = np.mod(phase, 1.0) < 0.22
        vertebra = (body | arch | spinous | (transverse & (reg.z < 700))) & (reg.z >= 210) & (reg.z <= 840)
        self.c.paint(reg, vertebra & ~disc, L["spine"])
        self.c.paint(reg, body & disc & (reg.z >= 210) & (reg.z <= 840), L["soft_tissue"])
        self.c.paint(reg, (r_canal <= canal_r) & (reg.z >= 240) & (reg.z <= 845), L["spinal_cord"])

    def ribs(self) -> None:
        reg = self._rib_region
        target = self.c.labels[reg.slices]
        protect = np.isin(target, [L["airways"], L["spine"], L["spinal_cord"], 0])
        self.c.paint(reg, self._rib_mask & ~protect, L["ribs_and_sternum"])
        centre, axes = self._sternum
        self._ellipsoid(L["ribs_and_sternum"], centre, axes, keep=[0])

    def pelvis(self) -> None:
        soft = [L["fat"], L["muscle"], L["soft_tissue"], L["bowel"], L["gastrointestinal_gas"]]
        for side in (-1, 1):
            self._ellipsoid(L["pelvis"], (side * 100, 28, 200), (8, 60, 55), rotation_matrix(0, 0, side * -40),
                            only=soft)                                                             # iliac wing
            self._capsules(L["pelvis"], [(side * 100, 28, 155), (side * 92, 0, 95)], 16, only=soft)
            self._ellipsoid(L["pelvis"], (side * 92, 0, 85), (24, 24, 24), only=soft)            # femoral head
            self._capsules(L["pelvis"], [(side * 92, 0, 85), (side * 125, 5, 55), (side * 132, 10, -40)], 15,
                           only=soft)                                                             # neck, shaft
            self._capsules(L["pelvis"], [(side * 92, 0, 85), (side * 16, -58, 75)], 11, only=soft)  # pubic ramus
            self._capsules(L["pelvis"], [(side * 90, 8, 80), (side * 58, 38, 38), (side * 20, -50, 58)], 12,
                           only=soft)                                                             # ischium
        self._ellipsoid(L["pelvis"], (0, 82, 165), (44, 20, 58), rotation_matrix(-25, 0, 0),
                        only=soft + [L["spine"]])                                                 # sacrum

    def shoulders_and_head(self) -> None:
        soft = [L["fat"], L["muscle"], L["soft_tissue"]]
        for side in (-1, 1):
            self._ellipsoid(L["shoulder_girdle"], (side * 95, 82, 640), (55, 7, 68), rotation_matrix(0, 0, side * 25),
                            only=soft)                                                            # scapula
            self._capsules(L["shoulder_girdle"], [(side * 18, -68, 705), (side * 75, -55, 718), (side * 125, -25, 726)],
                           8, only=soft)                                                          # clavicle
        reg = self.c.region([-60, -70, 812], [60, 40, 880])
        rho = np.sqrt((reg.x / 48) ** 2 + ((reg.y - 5) / 60) ** 2)
        mandible = (rho <= 1) & (rho >= 1 - 9 / 48) & (reg.y < 8) & (reg.z >= 815) & (reg.z <= 850)
        self.c.paint(reg, mandible, L["mandible"], only=soft)
        for side, name in ((-1, "right"), (1, "left")):
            self._capsules(L["mandible"], [(side * 46, 8, 830), (side * 48, 25, 876)], 8, only=soft)
            s = self._s("parotids")
            self._ellipsoid(L[f"parotid_{name}"], self._at("parotids", (side * 45, 22, 858)),
                            (16 * s, 22 * s, 27 * s), only=soft)
            s = self._s("submandibular_glands")
            self._ellipsoid(L[f"submandibular_{name}"], self._at("submandibular_glands", (side * 35, -12, 818)),
                            (12 * s, 16 * s, 12 * s), only=soft)
            s = self._s("thyroid")
            self._ellipsoid(L["thyroid"], self._at("thyroid", (side * 20, -28, 770)), (9 * s, 9 * s, 22 * s),
                            only=soft)
        d = self.p.organ_shift_mm.get("thyroid", (0, 0, 0))
        self._capsules(L["thyroid"], [np.add((-15, -34, 762), d), np.add((15, -34, 762), d)], 5, only=soft)


def _grid(p: TorsoParameters, spacing_mm: float) -> Tuple[Tuple[int, int, int], Tuple[float, float, float]]:
    half_x = (float(_LEAN[:, 1].max()) + p.fat_mm + 12) * p.scale[0] + 2 * p.deformation_mm
    half_y = (float(_LEAN[:, 2].max()) + 15 + p.fat_mm + 12) * p.scale[1] + 2 * p.deformation_mm
    z_lo, z_hi = 0.0, Z_TOP_mm * p.scale[2]
    size = (int(np.ceil(2 * half_x / spacing_mm)), int(np.ceil(2 * half_y / spacing_mm)),
            int(np.ceil((z_hi - z_lo) / spacing_mm)))
    origin = (-(size[0] - 1) * spacing_mm / 2, -(size[1] - 1) * spacing_mm / 2 + 4.0 * p.scale[1],
              z_lo + spacing_mm / 2)
    return (size[2], size[1], size[0]), origin


def generate_torso(params: Optional[TorsoParameters] = None, spacing_mm: float = 4.0,
                   lesions: Optional[list] = None) -> Anatomy:
    """Paint one torso on an isotropic grid of ``spacing_mm`` (LPS, origin so that x is centred).

    Args:
        params: anatomy (default: the nominal adult, no deformation).
        spacing_mm: voxel size [mm] (1–8).
        lesions: :class:`DeepDoseLib.phantoms.lesions.LesionSpec` list to add (default none).
    """
    from .lesions import paint_lesions

    p = params or TorsoParameters()
    if not 1.0 <= float(spacing_mm) <= 8.0:
        raise DeepDoseInputError(f"Torso voxel size must be 1–8 mm (got {spacing_mm}).")
    rng = np.random.default_rng(p.seed)
    shape, origin = _grid(p, float(spacing_mm))
    spacing = (float(spacing_mm),) * 3
    displacement = None
    if p.deformation_mm > 0:
        displacement = smooth_displacement(shape, spacing, p.deformation_mm, p.deformation_length_mm, rng)
    canvas = Canvas(shape, origin, spacing, p.scale, displacement)
    torso = _Torso(p, canvas, rng)
    torso.body()
    torso.muscles()
    torso.lungs()
    torso.bowel()
    torso.heart_and_vessels()
    torso.upper_abdomen()
    torso.bladder()
    torso.spine()
    torso.ribs()
    torso.pelvis()
    torso.shoulders_and_head()
    painted = paint_lesions(canvas, lesions or [], rng)
    values = np.unique(canvas.labels)
    info = label_info_for(values, painted)
    return Anatomy(canvas.labels, spacing, origin, {v: i.name for v, i in info.items()}, info, painted,
                   source="procedural", family=p.family, parameters={"torso": p.as_dict()})
