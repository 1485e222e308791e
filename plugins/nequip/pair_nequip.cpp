/* ----------------------------------------------------------------------
   anharmbench: pair style nequip (see pair_nequip.h)

   Evaluates a model compiled ahead of time into an AOTInductor package
   (.pt2, a zip archive holding a shared library) through libtorch's
   torch::inductor::AOTIModelPackageLoader, on the CPU, in the process of LAMMPS.

   ======================= THE .pt2 INTERFACE CONTRACT =======================
   Any model that follows it works with this pair style: NequIP packages made by
     nequip-compile CKPT OUT.nequip.pt2 --mode aotinductor --device cpu --target pair_nequip
   and other models exported with torch._inductor.aoti_compile_and_package(...,
   inductor_configs={"aot_inductor.metadata": {...}}) (e.g. the project's
   Behler-Parrinello networks).

   Package layout: the AOTInductor model must be named "model" (the default
   of aoti_compile_and_package and of nequip-compile), i.e. the archive holds
   <name>/data/aotinductor/model/<hash>.wrapper.so and its metadata json.

   Metadata (string -> string, the "aot_inductor.metadata" dict):
     required
       nequip_aoti_inputs   names of the inputs in call order, space separated; exactly
                            the five names below, in any order
                            ("pos edge_index atom_types cell edge_cell_shift")
       nequip_aoti_outputs  names of the outputs in result order, space separated; must
                            include the three names below (others are ignored)
                            ("atomic_energy forces virial")
       r_max                cutoff radius, Angstrom (e.g. "6.0"): the graph holds every
                            pair i-j (j any periodic image, j != i itself) with |r_ij| < r_max
       type_names           model type names, space separated (e.g. "O Th"); type index
                            k of atom_types is the k-th name (0-based)
       model_dtype          "float32" or "float64" (the precision inside the model; the
                            inputs and outputs below are float64 in both cases)
     optional
       per_edge_type_cutoff ntypes^2 cutoffs (Angstrom, row-major, row = type of the
                            centre atom edge_index[0], column = neighbour), each <= r_max;
                            an edge is kept only if shorter than its entry
       num_types            number of type names (checked when present)
       torch_version        torch version the package was compiled with (e.g. "2.13.0");
                            refused if it differs from the libtorch of this plugin
       AOTI_DEVICE_KEY      written by torch; must be "cpu"
       AOTI_PLATFORM, AOTI_MACHINE, AOTI_CPU_ISA
                            written by torch; must be "linux", this machine (uname -m), and
                            vector ISAs this CPU has (AVX2, AVX512, AVX512_VNNI, AMX_TILE)
       allow_tf32           ignored (CPU)

   Inputs (all on the CPU, contiguous; N = atoms, E = edges, N >= 2 and E >= 2):
       pos              (N, 3)    float64  Cartesian positions, Angstrom, of the owned atoms
       edge_index       (2, E)    int64    row 0 = centre atom i, row 1 = neighbour j (0..N-1)
       atom_types       (N,)      int64    model type index of each atom
       cell             (1, 3, 3) float64  rows = lattice vectors a, b, c, Angstrom
       edge_cell_shift  (E, 3)    float64  integer-valued n: r_ij = pos[j] - pos[i] + n @ cell
   Outputs (float32 accepted, converted to float64):
       atomic_energy    (N, 1) or (N,)     eV, per-atom energy; the total energy is the sum
       forces           (N, 3)             eV/Angstrom, -dE/dpos
       virial           (1, 3, 3) or (3,3) eV, -dE/d(strain) (= -V * ASE stress), so that
                                           LAMMPS's pressure is virial / V (plus kinetic)

   How the graph is built here: a full neighbour list of the owned atoms (with
   ghost atoms); every ghost neighbour j is mapped to its owner (same atom ID) and
   the lattice vector between them becomes edge_cell_shift. Nodes are therefore
   exactly the N owned atoms, which is exact for any cell size, including cells
   smaller than twice the cutoff (an atom then also meets its own images), and
   message passing over several layers needs no ghost features. Forces land on
   owned atoms only, so the results do not depend on the newton setting. The
   virial comes from the model (the cell is an input). All atoms must therefore
   be owned by one process: the pair style runs on one MPI rank.
------------------------------------------------------------------------- */

// libtorch before LAMMPS (LAMMPS's headers define short macros)
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/headeronly/version.h>
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "pair_nequip.h"

#include "nequip_metadata.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "utils.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

using namespace LAMMPS_NS;

namespace {

// the AOTInductor model name inside the package (nequip-compile's and torch's default)
constexpr const char *PACKAGE_MODEL_NAME = "model";
// a ghost atom must be its owner plus a lattice vector to this tolerance (fractional)
constexpr double SHIFT_TOL = 1.0e-6;

// message of an exception thrown by libtorch, without the C++ backtrace
std::string torch_message(const std::exception &e)
{
  if (const auto *c10e = dynamic_cast<const c10::Error *>(&e)) return c10e->what_without_backtrace();
  return e.what();
}

}    // namespace

/* ---------------------------------------------------------------------- */

PairNequIP::PairNequIP(LAMMPS *lmp) :
    PairAnharmbenchBase(lmp, "nequip", "MODEL.pt2", "model type name")
{
  // the virial is the model's (strain derivative): no_virial_fdotr_compute
}

/* ---------------------------------------------------------------------- */

// defined here, where AOTIModelPackageLoader is a complete type
PairNequIP::~PairNequIP()
{
  if (copymode) return;
  model.reset();
}

/* ----------------------------------------------------------------------
   pair_coeff * * FILE.pt2 Name_1 ... Name_ntypes
------------------------------------------------------------------------- */

void PairNequIP::coeff(int narg, char **arg)
{
  read_coeff_args(narg, arg, 1);
  read_metadata(arg[2]);

  type_mapper = map_type_args(info.type_names);
  for (int itype = 1; itype <= atom->ntypes; itype++)
    if (type_mapper[itype] < 0)
      error->all(FLERR,
                 "Pair style nequip: type name '{}' given for atom type {} is not a type of model "
                 "{} (its type_names: {}); give one of these names for every atom type",
                 type_args[itype], itype, filename,
                 utils::join_words(info.type_names, " "));

  load_model();
  set_all_pairs();
}

/* ----------------------------------------------------------------------
   read and check the package's metadata before its library is loaded
------------------------------------------------------------------------- */

void PairNequIP::read_metadata(const char *file)
{
  filename = file;
  // Every rank reads the package (and loads the model): a rank that cannot must not
  // stop alone, so the outcome is agreed before anyone calls error->all.
  std::string err;
  std::unordered_map<std::string, std::string> meta;
  FILE *fp = fopen(file, "rb");
  if (fp == nullptr) {
    err = fmt::format("Pair style nequip: cannot open model file {}: {}", file,
                      utils::getsyserror());
  } else {
    fclose(fp);
    try {
      meta = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(
          file, PACKAGE_MODEL_NAME);
    } catch (const std::exception &e) {
      err = fmt::format("Pair style nequip: {} is not a readable AOTInductor package (.pt2) "
                        "holding a model named '{}' (compile it with nequip-compile --mode "
                        "aotinductor --target pair_nequip): {}",
                        file, PACKAGE_MODEL_NAME, torch_message(e));
    }
  }
  agree_on_error(FLERR, err);
  const anharmbench::Metadata metadata(meta.begin(), meta.end());

  // the machine checks depend on the node a rank runs on: agreed as well; the rest
  // depends only on the (same) metadata, so every rank reaches the same verdict
  agree_on_error(FLERR, anharmbench::aoti_runs_here(filename, metadata, TORCH_VERSION));
  const std::string bad = anharmbench::parse_nequip_metadata(filename, metadata, info);
  if (!bad.empty()) error->all(FLERR, bad);
}

/* ----------------------------------------------------------------------
   load the compiled library (extracted by libtorch to a temporary folder) on
   every rank; a failure on any rank stops all of them together
------------------------------------------------------------------------- */

void PairNequIP::load_model()
{
  model.reset();
  std::string err;
  try {
    model = std::make_unique<torch::inductor::AOTIModelPackageLoader>(filename,
                                                                      PACKAGE_MODEL_NAME);
  } catch (const std::exception &e) {
    err = fmt::format("Pair style nequip: cannot load the compiled model {} with libtorch {} on "
                      "this machine: {}. A .pt2 package runs only with the torch version and on "
                      "a CPU like the ones it was compiled with: compile it again here "
                      "(nequip-compile ... --mode aotinductor --device cpu --target pair_nequip)",
                      filename, TORCH_VERSION, torch_message(e));
  }
  agree_on_error(FLERR, err);
  if (comm->me == 0)
    utils::logmesg(lmp,
                   "Pair style nequip: model {} ({}, r_max = {} A, types {}{}), libtorch {}, "
                   "{} thread(s)\n",
                   filename, info.dtype, info.r_max, utils::join_words(info.type_names, " "),
                   info.type_cutoff.empty() ? "" : ", per-edge-type cutoffs", TORCH_VERSION,
                   at::get_num_threads());
}

/* ---------------------------------------------------------------------- */

void PairNequIP::init_style()
{
  check_init();
  if (comm->nprocs != 1)
    error->all(FLERR,
               "Pair style nequip runs on one MPI rank (got {}): its message passing needs "
               "every atom on the rank that evaluates it; use threads (OMP_NUM_THREADS) instead",
               comm->nprocs);
  if (!model) error->all(FLERR, "Pair style nequip: no model loaded (pair_coeff missing)");
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

/* ---------------------------------------------------------------------- */

double PairNequIP::init_one(int /*i*/, int /*j*/)
{
  return info.r_max;
}

/* ---------------------------------------------------------------------- */

void PairNequIP::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  if (vflag_atom)
    error->all(FLERR,
               "Pair style nequip does not provide per-atom virials (compute stress/atom): the "
               "model returns only the global virial");

  double **x = atom->x;
  double **f = atom->f;
  const int *type = atom->type;
  const tagint *tag = atom->tag;
  const int nlocal = atom->nlocal;
  const int inum = list->inum;
  const int *ilist = list->ilist;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;

  // owner (local index) of every atom ID
  tagint maxtag = 0;
  for (int i = 0; i < nlocal; i++) maxtag = std::max(maxtag, tag[i]);
  tag2local.assign((size_t) maxtag + 1, -1);
  for (int i = 0; i < nlocal; i++) tag2local[tag[i]] = i;

  // box h: rows a = (xprd,0,0), b = (xy,yprd,0), c = (xz,yz,zprd)
  const double xprd = domain->xprd, yprd = domain->yprd, zprd = domain->zprd;
  const double xy = domain->triclinic ? domain->xy : 0.0;
  const double xz = domain->triclinic ? domain->xz : 0.0;
  const double yz = domain->triclinic ? domain->yz : 0.0;
  const bool periodic[3] = {domain->xperiodic != 0, domain->yperiodic != 0,
                            domain->zperiodic != 0};

  // --- edges: owned centre i, neighbour j mapped to its owner plus a lattice shift
  const size_t ntm = info.type_names.size();
  const double rmax2 = info.r_max * info.r_max;
  edge_src.clear();
  edge_dst.clear();
  edge_shift.clear();
  for (int ii = 0; ii < inum; ii++) {
    const int i = ilist[ii];
    const int ti = type_mapper[type[i]];
    const int *jlist = firstneigh[i];
    for (int jj = 0; jj < numneigh[i]; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      const double dx = x[j][0] - x[i][0];
      const double dy = x[j][1] - x[i][1];
      const double dz = x[j][2] - x[i][2];
      const double rsq = dx * dx + dy * dy + dz * dz;
      double rc2 = rmax2;
      if (!info.type_cutoff.empty()) {
        const double rc = info.type_cutoff[(size_t) ti * ntm + type_mapper[type[j]]];
        rc2 = rc * rc;
      }
      if (rsq >= rc2) continue;
      int owner = j;
      double n[3] = {0.0, 0.0, 0.0};
      if (j >= nlocal) {
        const tagint t = tag[j];
        owner = (t >= 0 && t <= maxtag) ? tag2local[t] : -1;
        if (owner < 0)
          error->one(FLERR, "Pair style nequip: ghost atom with ID {} has no owned copy", t);
        // d = x[j] - x[owner] = n . h  (h lower triangular)
        const double d[3] = {x[j][0] - x[owner][0], x[j][1] - x[owner][1],
                             x[j][2] - x[owner][2]};
        const double s2 = d[2] / zprd;
        const double s1 = (d[1] - s2 * yz) / yprd;
        const double s0 = (d[0] - s1 * xy - s2 * xz) / xprd;
        const double s[3] = {s0, s1, s2};
        for (int a = 0; a < 3; a++) {
          n[a] = std::nearbyint(s[a]);
          if (std::fabs(s[a] - n[a]) > SHIFT_TOL || (n[a] != 0.0 && !periodic[a]))
            error->one(FLERR,
                       "Pair style nequip: ghost atom {} (ID {}) is not a periodic image of its "
                       "owner (fractional offset {:.8g} {:.8g} {:.8g})",
                       j, t, s0, s1, s2);
        }
      }
      edge_src.push_back(i);
      edge_dst.push_back(owner);
      edge_shift.insert(edge_shift.end(), n, n + 3);
    }
  }
  const long nedges = (long) edge_src.size();
  if (nlocal < 2 || nedges < 2)
    error->one(FLERR,
               "Pair style nequip: the compiled model needs at least 2 atoms and 2 edges "
               "(pairs closer than r_max = {} A); got {} atoms and {} edges",
               info.r_max, nlocal, nedges);

  // --- input tensors (float64 / int64, CPU)
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  at::Tensor pos = at::empty({nlocal, 3}, f64);
  at::Tensor types = at::empty({nlocal}, i64);
  at::Tensor edge_index = at::empty({2, nedges}, i64);
  at::Tensor cell = at::empty({1, 3, 3}, f64);
  at::Tensor shifts = at::empty({nedges, 3}, f64);
  {
    double *p = pos.data_ptr<double>();
    int64_t *t = types.data_ptr<int64_t>();
    for (int i = 0; i < nlocal; i++) {
      for (int a = 0; a < 3; a++) p[3 * i + a] = x[i][a];
      t[i] = type_mapper[type[i]];
    }
    int64_t *e = edge_index.data_ptr<int64_t>();
    std::copy(edge_src.begin(), edge_src.end(), e);
    std::copy(edge_dst.begin(), edge_dst.end(), e + nedges);
    std::copy(edge_shift.begin(), edge_shift.end(), shifts.data_ptr<double>());
    const double h[9] = {xprd, 0.0, 0.0, xy, yprd, 0.0, xz, yz, zprd};
    std::copy(h, h + 9, cell.data_ptr<double>());
  }
  std::vector<at::Tensor> inputs;
  inputs.reserve(info.input_names.size());
  for (const auto &name : info.input_names) {
    if (name == "pos") inputs.push_back(pos);
    else if (name == "edge_index") inputs.push_back(edge_index);
    else if (name == "atom_types") inputs.push_back(types);
    else if (name == "cell") inputs.push_back(cell);
    else inputs.push_back(shifts);
  }

  std::vector<at::Tensor> outputs;
  try {
    outputs = model->run(inputs);
  } catch (const std::exception &e) {
    error->one(FLERR, "Pair style nequip: model {} failed on {} atoms and {} edges: {}",
               filename, nlocal, nedges, torch_message(e));
  }
  if (outputs.size() != info.output_names.size())
    error->one(FLERR, "Pair style nequip: model {} returned {} outputs, its metadata names {}",
               filename, outputs.size(), info.output_names.size());
  at::Tensor energy_t, force_t, virial_t;
  for (size_t k = 0; k < outputs.size(); k++) {
    if (info.output_names[k] == "atomic_energy") energy_t = outputs[k];
    else if (info.output_names[k] == "forces") force_t = outputs[k];
    else if (info.output_names[k] == "virial") virial_t = outputs[k];
  }
  energy_t = energy_t.to(at::kCPU, at::kDouble).contiguous();
  force_t = force_t.to(at::kCPU, at::kDouble).contiguous();
  virial_t = virial_t.to(at::kCPU, at::kDouble).contiguous();
  if (energy_t.numel() != nlocal || force_t.numel() != 3L * nlocal || virial_t.numel() != 9)
    error->one(FLERR,
               "Pair style nequip: model {} returned atomic_energy/forces/virial with {}/{}/{} "
               "values, expected {}/{}/9",
               filename, energy_t.numel(), force_t.numel(), virial_t.numel(), nlocal,
               3 * nlocal);

  const double *ea = energy_t.data_ptr<double>();
  const double *fa = force_t.data_ptr<double>();
  const double *va = virial_t.data_ptr<double>();
  double energy = 0.0;
  for (int i = 0; i < nlocal; i++) {
    f[i][0] += fa[3 * i + 0];
    f[i][1] += fa[3 * i + 1];
    f[i][2] += fa[3 * i + 2];
    energy += ea[i];
    if (eflag_atom) eatom[i] += ea[i];
  }
  if (eflag_global) eng_vdwl += energy;
  if (vflag_global) add_symmetric_virial(virial, va);
}

/* ---------------------------------------------------------------------- */

double PairNequIP::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += (double) tag2local.size() * sizeof(int);
  bytes += (double) (edge_src.size() + edge_dst.size()) * sizeof(long);
  bytes += (double) edge_shift.size() * sizeof(double);
  return bytes;
}
