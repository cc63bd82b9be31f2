"""Second-order well-balanced finite-volume step ("fv2") for the inundation grids.

The scheme (cell-centred surface ``eta`` and discharges ``qx``, ``qy``):

* MUSCL reconstruction of the surface, the depth and the velocities with a generalised
  minmod limiter; a cell next to a dry cell (or the grid edge) is reconstructed to first
  order, so the moving shoreline stays positive and needs no special case;
* hydrostatic reconstruction at every face (Audusse et al. 2004, SIAM J. Sci. Comput. 25):
  the face depths are re-measured from the higher of the two reconstructed beds, which
  makes the scheme well balanced (a lake at rest stays at rest next to dry land) and lets
  water flow onto dry ground only where its surface stands above it;
* an HLL (central-upwind) Riemann solver for depth and normal momentum, the tangential
  momentum carried upwind with the mass flux (the HLLC contact wave for a passive scalar);
* Heun's method (SSP-RK2) in time with a time step from the actual wave and flow speeds;
* Manning friction implicit in each stage (stable as the depth goes to zero);
* an exact outflow limiter: where a face would drain its upwind cell below zero in a
  stage, the fluxes leaving that cell are scaled down, so depth stays non-negative and
  volume is conserved to round-off.

Well-balancing in float32. Audusse's cell update, written as flux differences plus a
centred bed source, cancels a lake at rest only to round-off: in float32 the pressure
terms of a 10 m lake (~490 m3/s2) leave 1e-5 m/s of noise per step. Here the momentum
update is rearranged, exactly in exact arithmetic, into

    -(Phi_E - Phi_W) / dx - g D (eta_E - eta_W) / dx

with ``Phi = F_momentum - g h*^2 / 2`` at each face (h* the face's hydrostatic depth on the
cell's side) and ``eta_E - eta_W`` the cell's limited surface slope. At rest every term is
exactly zero in any precision: the surface slope vanishes, and the HLL flux of two equal
states is computed in a symmetric form that returns the common flux bit for bit. The
kernels use no fast-math contraction for the same reason.

Each stage is one parallel pass (:func:`fv2_stage`) down blocks of rows. Down a block,
row by row: each cell's slopes are limited once (each face reads both its neighbours'),
every face's fluxes computed (boundary faces from ghost states), the outflow limiter's
factors taken a row behind and the cells updated (friction, Coriolis and, in the second
stage, the running maxima and the wave-speed bound for the next time step) two rows
behind, through buffers of three rows that stay in the core's cache. As four grid-wide
passes (slopes, faces, limiter, cells) the stage wrote 16 slope and face arrays to memory
and read them back: on grids larger than the cache the passes were memory-bound. Loops
are branch-free in the interior so LLVM vectorises them.

Layout: ``eta``/``h``/``qx``/``qy``/``u``/``v`` (ny, nx); x-faces per row (nx + 1) (face
i lies between cells i-1 and i); y-face rows 0 to ny (row j between cell rows j-1 and j).
The face mass fluxes of the two stages are averaged into ``M`` (ny, nx + 1) and ``N``
(ny + 1, nx): the volume actually moved through each face per unit width and time over
the step (used by nesting, gauges and diagnostics).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tsunami.kernels.boundary import INCIDENT, PRESCRIBED, WALL
from tsunami.kernels.scalar import (
    flush_denormals,
    inverse_cbrt,
    max_of_numbers,
    record_flow_maxima,
    record_maxima,
    restore_fp_mode,
    typed,
)

# No 'contract' or 'reassoc': the lake-at-rest cancellation relies on exact rounding.
FV_FASTMATH = {"nsz", "arcp", "afn"}
U1 = np.uint64(1)
# The per-face and per-cell functions are inlined into the loops at the Numba-IR level
# (inline="always"): as plain @njit functions LLVM left them out of line, each call
# passing some 200 scalars (every array is 7), and the loops could not vectorise: the
# step cost 5x more (11.2 against 2.1 ms CPU on a 128 x 129 coast). The row functions of
# the stage kernel too: with the cell update's row a plain @njit function, its loops
# stayed scalar and the step took 3x longer (2.81 against 0.95 ms on a 256 x 257 coast).
@njit(inline="always", cache=True)
def half_slope(behind, here, ahead, ok, theta):
    """Half the limited slope of a cell; zero where not ``ok``.

    Generalised minmod with parameter ``theta``: 1 is minmod, 2 monotonised central, 0
    turns the reconstruction off (first order). Branch-free (bitwise logic, selects) so
    the calling loops vectorise."""
    zero = typed(0.0, here)
    half = typed(0.5, here)
    left = here - behind
    right = ahead - here
    magnitude = half * min(min(theta * abs(left), theta * abs(right)), half * abs(left + right))
    same_sign = left * right > zero
    signed = magnitude if right > zero else -magnitude
    return signed if (ok & same_sign) else zero


@njit(inline="always", cache=True)
def limited_slopes(eta, h, u, v, jb, ib, j, i, ja, ia, dry_depth, theta):
    """Half the limited slopes of (eta, D, u, v) in cell (j, i) between its neighbours
    (jb, ib) behind and (ja, ia) ahead along one axis; zero unless all three are wet."""
    d_b = eta[jb, ib] + h[jb, ib]
    d_c = eta[j, i] + h[j, i]
    d_a = eta[ja, ia] + h[ja, ia]
    ok = (d_b > dry_depth) & (d_c > dry_depth) & (d_a > dry_depth)
    return (half_slope(eta[jb, ib], eta[j, i], eta[ja, ia], ok, theta),
            half_slope(d_b, d_c, d_a, ok, theta),
            half_slope(u[jb, ib], u[j, i], u[ja, ia], ok, theta),
            half_slope(v[jb, ib], v[j, i], v[ja, ia], ok, theta))


@njit(inline="always", cache=True)
def store_slopes(slopes, s, i, values):
    slopes[s, 0, i] = values[0]
    slopes[s, 1, i] = values[1]
    slopes[s, 2, i] = values[2]
    slopes[s, 3, i] = values[3]


@njit(inline="always", cache=True)
def row_slopes(eta, h, u, v, j, dry_depth, theta, span_lo, span_hi, slope_x, slope_y, s):
    """Half the limited slopes of row ``j``'s surface, depth and velocities along x and
    y into slot ``s`` of ``slope_x``/``slope_y`` (slot, [eta, D, u, v], column). Zero
    where the cell or a neighbour along that axis is dry or missing (first-order
    reconstruction there).

    Covers the row's span and the cells beside it and beside the spans of the rows above
    and below: every cell a face of the stage reads."""
    ny, nx = eta.shape
    zero = typed(0.0, dry_depth)
    lo, hi = nx, 0
    for k in range(max(j - 1, 0), min(j + 2, ny)):
        if span_lo[k] < span_hi[k]:
            lo = min(lo, span_lo[k])
            hi = max(hi, span_hi[k])
    first = np.uint64(max(lo - 1, 0))
    stop = np.uint64(max(min(hi + 1, nx), lo))
    if j == 0 or j == ny - 1:
        for i in range(first, stop):
            for q in range(4):
                slope_y[s, q, i] = zero
    else:
        for i in range(first, stop):
            store_slopes(slope_y, s, i, limited_slopes(eta, h, u, v, j - 1, i, j, i, j + 1, i,
                                                       dry_depth, theta))
    # Along x: the edge columns have no outer neighbour; the interior, branch-free.
    for edge in (0, nx - 1):
        if first <= edge < stop:
            for q in range(4):
                slope_x[s, q, edge] = zero
    for i in range(max(first, U1), min(stop, np.uint64(max(nx - 1, 1)))):
        store_slopes(slope_x, s, i, limited_slopes(eta, h, u, v, j, i - U1, j, i, j, i + U1,
                                                   dry_depth, theta))


@njit(inline="always", cache=True)
def riemann(eta_l, d_l, u_l, v_l, eta_r, d_r, u_r, v_r, g):
    """Hydrostatic reconstruction and HLL flux across a face (normal velocity u).

    Returns (mass flux, Phi for the left cell, Phi for the right cell, tangential
    momentum flux), Phi = normal momentum flux - g h*^2 / 2 with h* the hydrostatic depth
    on that side.
    """
    zero = typed(0.0, eta_l)
    half = typed(0.5, eta_l)
    bed = max(eta_l - d_l, eta_r - d_r)
    h_l = max(eta_l - bed, zero)
    h_r = max(eta_r - bed, zero)
    c_l = np.sqrt(g * h_l)
    c_r = np.sqrt(g * h_r)
    a_plus = max(max(u_l + c_l, u_r + c_r), zero)
    a_minus = min(min(u_l - c_l, u_r - c_r), zero)
    spread = a_plus - a_minus
    p_l = half * g * h_l * h_l
    p_r = half * g * h_r * h_r
    q_l = h_l * u_l
    q_r = h_r * u_r
    f_l = q_l * u_l + p_l
    f_r = q_r * u_r + p_r
    # Symmetric HLL form: equal states give exactly their common flux.
    inv = typed(1.0, eta_l) / max(spread, typed(1e-30, eta_l))
    centre = half * (a_plus + a_minus)
    product = a_plus * a_minus
    mass = half * (q_l + q_r) + (centre * (q_l - q_r) + product * (h_r - h_l)) * inv
    momentum = half * (f_l + f_r) + (centre * (f_l - f_r) + product * (q_r - q_l)) * inv
    wet = spread > typed(1e-30, eta_l)
    mass = mass if wet else zero
    momentum = momentum if wet else zero
    tangential = mass * (v_l if mass > zero else v_r)
    return mass, momentum - p_l if wet else zero, momentum - p_r if wet else zero, tangential


@njit(cache=True)
def ghost(mode, inward, eta_c, d_c, un_c, h_c, eta_in, q_in, eta_nest, g, dry_depth):
    """Ghost (eta, D, normal velocity) outside a boundary face, in the inward frame
    (normal velocity positive into the grid).

    WALL mirrors the cell; OPEN and INCIDENT use the Riemann invariants of the outgoing
    characteristic and of the incident wave (none for OPEN); PRESCRIBED (a nested grid's
    edge) takes its parent's surface and flux.
    """
    zero = typed(0.0, eta_c)
    if mode == PRESCRIBED:
        depth = max(eta_nest + h_c, zero)
        velocity = inward * q_in / depth if depth > dry_depth else zero
        return eta_nest, depth, velocity
    if mode == WALL or h_c <= dry_depth or d_c <= dry_depth:
        return eta_c, d_c, -un_c
    forcing = eta_in if mode == INCIDENT else zero
    incoming = forcing * np.sqrt(g / h_c) + typed(2.0, eta_c) * np.sqrt(
        g * max(h_c + forcing, zero))
    outgoing = un_c - typed(2.0, eta_c) * np.sqrt(g * d_c)
    celerity = max(typed(0.25, eta_c) * (incoming - outgoing), zero)
    depth = celerity * celerity / g
    return depth - h_c, depth, typed(0.5, eta_c) * (incoming + outgoing)


@njit(cache=True)
def boundary_face(mode, inward, eta_c, d_c, un_c, ut_c, h_c, eta_in, q_in, eta_nest, g,
                  dry_depth):
    """Fluxes (mass, Phi of the cell, tangential) across a boundary face, in the grid's
    axis direction (positive toward increasing index)."""
    eta_g, d_g, un_g = ghost(mode, inward, eta_c, d_c, un_c, h_c, eta_in, q_in, eta_nest, g,
                             dry_depth)
    # Solve in the inward frame with the ghost on the left, then turn back.
    mass, _, phi_cell, tangential = riemann(eta_g, d_g, un_g, ut_c, eta_c, d_c, un_c, ut_c, g)
    if mode == PRESCRIBED:
        # The parent's flux, in the grid's axis direction like every face flux here (not
        # the inward frame of the Riemann problem: turned, it reversed the flow through
        # east and north edges).
        mass = q_in
        tangential = mass * ut_c
    else:
        mass = inward * mass
        tangential = inward * tangential
    return mass, phi_cell, tangential


@njit(inline="always", cache=True)
def store_face(faces, s, i, fluxes):
    m, pl, pr, t = fluxes
    faces[s, 0, i] = m
    faces[s, 1, i] = pl
    faces[s, 2, i] = pr
    faces[s, 3, i] = t


@njit(inline="always", cache=True)
def row_x_faces(eta, h, u, v, slope_x, x_faces, j, s, modes, eta_in, edge_q_w, edge_q_e,
                edge_eta_w, edge_eta_e, g, dry_depth, span_lo, span_hi):
    """Fluxes on row ``j``'s x-faces [lo, hi] around its active cells [lo, hi) into slot
    ``s`` of ``x_faces`` (slot, [mass, Phi left, Phi right, tangential], face); face i
    lies between cells i-1 and i, the states reconstructed with the slopes in slot ``s``
    of ``slope_x``; the grid's west and east edges from ghost states."""
    nx = eta.shape[1]
    one = typed(1.0, dry_depth)
    lo, hi = span_lo[j], span_hi[j]
    if lo >= hi:
        return
    first = max(lo, 1)
    for i in range(np.uint64(first), np.uint64(max(min(hi, nx - 1) + 1, first))):
        il = i - U1
        store_face(x_faces, s, i, riemann(
            eta[j, il] + slope_x[s, 0, il], eta[j, il] + h[j, il] + slope_x[s, 1, il],
            u[j, il] + slope_x[s, 2, il], v[j, il] + slope_x[s, 3, il],
            eta[j, i] - slope_x[s, 0, i], eta[j, i] + h[j, i] - slope_x[s, 1, i],
            u[j, i] - slope_x[s, 2, i], v[j, i] - slope_x[s, 3, i], g))
    for side in range(2):
        if (lo == 0) if side == 0 else (hi == nx):
            i = 0 if side == 0 else nx - 1
            inward = one if side == 0 else -one
            m, p, t = boundary_face(
                modes[side], inward, eta[j, i], eta[j, i] + h[j, i], inward * u[j, i], v[j, i],
                h[j, i], eta_in[side], edge_q_w[j] if side == 0 else edge_q_e[j],
                edge_eta_w[j] if side == 0 else edge_eta_e[j], g, dry_depth)
            store_face(x_faces, s, 0 if side == 0 else nx, (m, p, p, t))


@njit(inline="always", cache=True)
def row_y_faces(eta, h, u, v, slope_y, y_faces, j, s, s_below, s_above, modes, eta_in,
                edge_q_s, edge_q_n, edge_eta_s, edge_eta_n, g, dry_depth, span_lo, span_hi):
    """Fluxes on y-face row ``j`` (between cell rows j-1 and j; 0 and ny the grid's
    south and north edges) into slot ``s`` of ``y_faces``: interior faces in the columns
    active in either row they separate, reconstructed with the slopes of rows j-1 and j
    (slots ``s_below`` and ``s_above`` of ``slope_y``); edge faces from ghost states."""
    ny = eta.shape[0]
    one = typed(1.0, dry_depth)
    if 1 <= j <= ny - 1:
        lo = min(span_lo[j - 1], span_lo[j])
        hi = max(span_hi[j - 1], span_hi[j])
        jl = j - 1
        for i in range(np.uint64(lo), np.uint64(max(hi, lo))):
            store_face(y_faces, s, i, riemann(
                eta[jl, i] + slope_y[s_below, 0, i],
                eta[jl, i] + h[jl, i] + slope_y[s_below, 1, i],
                v[jl, i] + slope_y[s_below, 3, i], u[jl, i] + slope_y[s_below, 2, i],
                eta[j, i] - slope_y[s_above, 0, i], eta[j, i] + h[j, i] - slope_y[s_above, 1, i],
                v[j, i] - slope_y[s_above, 3, i], u[j, i] - slope_y[s_above, 2, i], g))
    else:
        side = 2 if j == 0 else 3
        jc = 0 if j == 0 else ny - 1
        inward = one if j == 0 else -one
        for i in range(span_lo[jc], span_hi[jc]):
            m, p, t = boundary_face(
                modes[side], inward, eta[jc, i], eta[jc, i] + h[jc, i], inward * v[jc, i],
                u[jc, i], h[jc, i], eta_in[side], edge_q_s[i] if j == 0 else edge_q_n[i],
                edge_eta_s[i] if j == 0 else edge_eta_n[i], g, dry_depth)
            store_face(y_faces, s, i, (m, p, p, t))


@njit(inline="always", cache=True)
def row_outflow_ratios(eta, h, x_faces, y_faces, j, s, s_north, inv_dx, north, south, dt,
                       span_lo, span_hi, ratio):
    """The exact outflow limiter's factors of row ``j`` into slot ``s`` of ``ratio``:
    holding / outflow where the fluxes leaving a cell over ``dt`` would take more water
    than it holds, one elsewhere (outside the active cells too). Returns whether any
    factor is below one. Faces: the row's x-faces (slot ``s``), y-face rows j (``s``)
    and j + 1 (``s_north``)."""
    nx = eta.shape[1]
    zero = typed(0.0, dt)
    one = typed(1.0, dt)
    for i in range(nx):
        ratio[s, i] = one
    limited = False
    for i in range(np.uint64(span_lo[j]), np.uint64(max(span_hi[j], span_lo[j]))):
        # Grouped so that mirror-image cells compute bit-identical factors.
        outflow = dt * ((max(x_faces[s, 0, i + U1], zero) - min(x_faces[s, 0, i], zero))
                        * inv_dx + (max(y_faces[s_north, 0, i], zero) * north
                                    - min(y_faces[s, 0, i], zero) * south))
        depth = eta[j, i] + h[j, i]
        drained = outflow > depth
        ratio[s, i] = depth / outflow if drained else one
        limited |= drained
    return limited


@njit(inline="always", cache=True)
def scale_face(faces, s, i, r):
    for q in range(4):
        faces[s, q, i] *= r


@njit(inline="always", cache=True)
def limit_row_faces(x_faces, y_faces, ratio, limited, j, x_too, span_lo, span_hi, dt):
    """Scale the fluxes of y-face row ``j`` and (``x_too``) of cell row ``j``'s x-faces
    by the outflow limiter's factors (ring slots of :func:`row_outflow_ratios`, rows
    j - 1 and j; ``limited`` flags the rows with a factor below one): each face takes
    the factor of the cell its water leaves, one beyond the grid's edges."""
    ny, nx = span_lo.shape[0], ratio.shape[1]
    zero = typed(0.0, dt)
    one = typed(1.0, dt)
    s = j % 3
    s_south = (j - 1) % 3
    if x_too and limited[s]:
        for face in range(span_lo[j], span_hi[j] + 1):
            i = np.uint64(face)
            r_west = ratio[s, i - U1] if face > 0 else one
            r_east = ratio[s, i] if face < nx else one
            scale_face(x_faces, s, i, r_west if x_faces[s, 0, i] > zero else r_east)
    if (j >= 1 and limited[s_south]) or (j < ny and limited[s]):
        # The columns active in either row the faces separate (one row at the edges).
        below, above = max(j - 1, 0), min(j, ny - 1)
        for i in range(min(span_lo[below], span_lo[above]),
                       max(span_hi[below], span_hi[above])):
            r_south = ratio[s_south, i] if j > 0 else one
            r_north = ratio[s, i] if j < ny else one
            scale_face(y_faces, s, i, r_south if y_faces[s, 0, i] > zero else r_north)


@njit(inline="always", cache=True)
def cell_update(eta, h, qx, qy, eta_out, qx_out, qy_out, u_out, v_out, x_faces, y_faces, n2,
                slope_x, slope_y, j, i, s, s_north, metric, params, final):
    """Euler update of cell (j, i) from its (limited) face fluxes: the row's x-faces and
    slopes in slot ``s`` of their buffers, y-face rows j and j + 1 in slots ``s`` and
    ``s_north``.

    ``metric``: (1/dx, 1/dy, north and south weights over dy, Coriolis f) of the row;
    ``params``: (dt, g, dry depth, max speed). The surface slopes come from
    :func:`row_slopes`. ``final`` (Heun's second stage) averages the result with the
    start of the step, which the output arrays hold until this cell is written.

    Pairs of opposite faces are differenced before they are summed, so a problem that is
    symmetric about a grid line gives bit-for-bit symmetric results.
    """
    inv_dx, inv_dy, north, south, f = metric
    dt, g, dry_depth, max_speed = params
    zero = typed(0.0, dt)
    half = typed(0.5, dt)
    one = typed(1.0, dt)
    depth = eta[j, i] + h[j, i]
    # The limited surface slopes: the cell's share of the hydrostatic pressure term.
    slope_eta_x = slope_x[s, 0, i]
    slope_eta_y = slope_y[s, 0, i]
    two_g_depth = typed(2.0, dt) * g * depth
    ie1 = i + U1
    new_eta = eta[j, i] - dt * ((x_faces[s, 0, ie1] - x_faces[s, 0, i]) * inv_dx
                                + (y_faces[s_north, 0, i] * north - y_faces[s, 0, i] * south))
    new_qx = qx[j, i] - dt * (
        (x_faces[s, 1, ie1] - x_faces[s, 2, i]) * inv_dx + two_g_depth * slope_eta_x * inv_dx
        + (y_faces[s_north, 3, i] * north - y_faces[s, 3, i] * south) - f * qy[j, i])
    new_qy = qy[j, i] - dt * (
        (x_faces[s, 3, ie1] - x_faces[s, 3, i]) * inv_dx
        + (y_faces[s_north, 1, i] * north - y_faces[s, 2, i] * south)
        + two_g_depth * slope_eta_y * inv_dy + f * qx[j, i])
    ground = -h[j, i]
    new_eta = max(new_eta, ground)
    # Manning friction, implicit: q / (1 + dt g n^2 |q| / D^(7/3)).
    w = inverse_cbrt(max(new_eta - ground, dry_depth))
    w2 = w * w
    magnitude = np.sqrt(new_qx * new_qx + new_qy * new_qy)
    friction = one / (one + dt * g * n2[j, i] * magnitude * (w2 * w2 * w2 * w))
    new_qx = new_qx * friction
    new_qy = new_qy * friction
    if final:
        new_eta = max(half * (eta_out[j, i] + new_eta), ground)
        new_qx = half * (qx_out[j, i] + new_qx)
        new_qy = half * (qy_out[j, i] + new_qy)
    new_depth = new_eta - ground
    new_wet = new_depth > dry_depth
    inv_depth = one / max(new_depth, dry_depth)
    new_u = new_qx * inv_depth if new_wet else zero
    new_v = new_qy * inv_depth if new_wet else zero
    # A cap on the speed guards thin films, as in the leapfrog scheme.
    speed = np.sqrt(new_u * new_u + new_v * new_v)
    cap = max_speed / speed if speed > max_speed else one
    new_u *= cap
    new_v *= cap
    eta_out[j, i] = new_eta
    qx_out[j, i] = new_u * new_depth
    qy_out[j, i] = new_v * new_depth
    u_out[j, i] = new_u
    v_out[j, i] = new_v


@njit(inline="always", cache=True)
def record_cell_maxima(eta, h, u, v, j, i, inv_dx, inv_dy, g, dry_depth, speed_depth,
                       arrival_threshold, time, eta_max, arrival_time, speed_max,
                       momentum_flux_max):
    """Update the maxima and arrival time of cell (j, i) after a step; return its
    wave-speed rate (|u| + c)/dx + (|v| + c)/dy (1/s), 0 where dry or not a number (a
    blown-up cell, which :meth:`~tsunami.model.ShallowWaterModel.check_health` reports).
    A loop of its own, apart from the cell update: with these arrays written as well,
    that loop held too many arrays for LLVM's run-time alias checks and stayed scalar
    (0.8 against 0.23 ms per stage on 16.5k cells)."""
    zero = typed(0.0, g)
    ground = -h[j, i]
    surface = eta[j, i]
    depth = surface - ground
    uu = u[j, i]
    vv = v[j, i]
    record_maxima(surface, depth, ground, time, dry_depth, arrival_threshold, eta_max,
                  arrival_time, j, i)
    record_flow_maxima(depth, uu, vv, speed_depth, speed_max, momentum_flux_max, j, i)
    celerity = np.sqrt(g * depth)
    rate = (abs(uu) + celerity) * inv_dx + (abs(vv) + celerity) * inv_dy
    return rate if (depth > dry_depth) & (rate == rate) else zero


@njit(inline="always", cache=True)
def update_row(state, out, M, N, n2, slope_x, slope_y, x_faces, y_faces, j, metrics, params,
               span_lo, span_hi, final, time, thresholds, maxima, rate_rows):
    """Cell update of row ``j`` of :func:`fv2_stage` (its faces limited), with the row's
    share of M, N and, in the final stage, its maxima and CFL rate. (Arguments grouped
    in tuples: a call of more than 30 arguments compiles to a call with ``*args``, which
    Numba cannot inline.)"""
    eta, h, qx, qy = state
    eta_out, qx_out, qy_out, u_out, v_out = out
    inv_dx_c, inv_dy, cos_north, cos_south, coriolis_c = metrics
    speed_depth, arrival_threshold = thresholds
    eta_max, arrival_time, speed_max, momentum_flux_max = maxima
    ny, nx = eta.shape
    dt, g, dry_depth, _ = params
    zero = typed(0.0, dt)
    half = typed(0.5, dt)
    s = j % 3
    s_north = (j + 1) % 3
    lo, hi = span_lo[j], span_hi[j]
    metric = (inv_dx_c[j], inv_dy, cos_north[j] * inv_dy, cos_south[j] * inv_dy,
              coriolis_c[j])
    # Branch-free, vectorised. Two loops with a constant ``final``: a loop that branches
    # on it is too large for LLVM to unswitch, and stays scalar.
    first = np.uint64(lo)
    stop = np.uint64(max(hi, lo))
    if final:
        for i in range(first, stop):
            cell_update(eta, h, qx, qy, eta_out, qx_out, qy_out, u_out, v_out, x_faces,
                        y_faces, n2, slope_x, slope_y, j, i, s, s_north, metric, params, True)
    else:
        for i in range(first, stop):
            cell_update(eta, h, qx, qy, eta_out, qx_out, qy_out, u_out, v_out, x_faces,
                        y_faces, n2, slope_x, slope_y, j, i, s, s_north, metric, params,
                        False)
    # The row's largest rate, taken in the maxima loop. The loop vectorises with an
    # unsigned index (a signed one adds negative-index wrap-around and kept it scalar)
    # and a NaN-free max (LLVM vectorises no other max reduction).
    rate = zero
    if final:
        for i in range(first, stop):
            rate = max_of_numbers(rate, record_cell_maxima(
                eta_out, h, u_out, v_out, j, i, inv_dx_c[j], inv_dy, g, dry_depth,
                speed_depth, arrival_threshold, time, eta_max, arrival_time, speed_max,
                momentum_flux_max))
    rate_rows[j] = rate
    # Volume moved through the faces over the step: half of each stage's flux.
    below = span_lo[j - 1] if j > 0 else lo
    above = span_hi[j - 1] if j > 0 else hi
    mean_flux_row(x_faces, s, lo, min(hi + 1, nx + 1), M, j, half, final)
    mean_flux_row(y_faces, s, min(lo, below), max(hi, above), N, j, half, final)
    mean_flux_row(y_faces, s_north, lo, hi if j == ny - 1 else lo, N, ny, half, final)


@njit(inline="always", cache=True)
def mean_flux_row(faces, s, start, end, mean, face_row, half, final):
    """Half the mass fluxes of faces [start, end) in slot ``s`` into (first stage) or
    added to (final stage) row ``face_row`` of ``mean``. Unsigned indices and a loop
    per stage: so they vectorise."""
    first = np.uint64(start)
    last = np.uint64(max(end, start))
    if final:
        for i in range(first, last):
            mean[face_row, i] += half * faces[s, 0, i]
    else:
        for i in range(first, last):
            mean[face_row, i] = half * faces[s, 0, i]


@njit(parallel=True, fastmath=FV_FASTMATH, cache=True)
def fv2_stage(eta, h, qx, qy, u, v, eta_out, qx_out, qy_out, u_out, v_out, M, N, n2, modes,
              eta_in, edge_q_w, edge_q_e, edge_q_s, edge_q_n, edge_eta_w, edge_eta_e,
              edge_eta_s, edge_eta_n, inv_dx_c, inv_dy, cos_north, cos_south, coriolis_c, dt,
              g, dry_depth, theta, max_speed, span_lo, span_hi, final, time, speed_depth,
              arrival_threshold, eta_max, arrival_time, speed_max, momentum_flux_max,
              rate_rows, block_rows):
    """One stage of Heun's method: the active cells of the stage state (eta, qx, qy, u,
    v) advanced by ``dt`` into ``*_out`` (m, m^2/s, m/s).

    First stage (``final`` False): writes half the face mass fluxes to M, N. Second
    stage: the output arrays hold the start-of-step state, and each cell's becomes the
    mean of it and the result (Heun); adds half its mass fluxes to M, N, and updates the
    maxima and ``rate_rows`` ((|u| + c)/dx + (|v| + c)/dy per row, 1/s).

    One pass over blocks of ``block_rows`` rows, a block per thread at a time. Down a
    block, each row's slopes, face fluxes, limiter factors and cell update follow one
    another through buffers of three rows, which stay in the core's cache: as separate
    grid-wide passes (slopes, faces, limiter, cells) each pass wrote and the next read
    back 8 slope and 8 face arrays from memory. A block recomputes the slopes, faces and
    factors of the two rows beyond each of its ends that its own rows need (the
    limiter's factor of a cell needs the faces of the next row).
    """
    ny, nx = eta.shape
    params = (dt, g, dry_depth, max_speed)
    blocks = (ny + block_rows - 1) // block_rows
    for block in prange(blocks):
        fp_mode = flush_denormals()
        j0 = np.int64(block) * block_rows
        j1 = min(j0 + block_rows, ny)
        # Rings of three rows: slot k % 3 holds row k (face row k of y_faces).
        slope_x = np.empty((3, 4, nx), eta.dtype)
        slope_y = np.empty((3, 4, nx), eta.dtype)
        x_faces = np.empty((3, 4, nx + 1), eta.dtype)
        y_faces = np.empty((3, 4, nx), eta.dtype)
        ratio = np.empty((3, nx), eta.dtype)
        limited = np.zeros(3, np.bool_)
        # Row a leads: its slopes and faces; the limiter's factors follow one row behind
        # (they need face row a), the cell update two (it needs limited face row a - 1).
        for a in range(j0 - 2, j1 + 2):
            if 0 <= a < ny:
                row_slopes(eta, h, u, v, a, dry_depth, theta, span_lo, span_hi, slope_x,
                           slope_y, a % 3)
            if max(j0 - 1, 0) <= a <= min(j1 + 1, ny):
                row_y_faces(eta, h, u, v, slope_y, y_faces, a, a % 3, (a - 1) % 3, a % 3,
                            modes, eta_in, edge_q_s, edge_q_n, edge_eta_s, edge_eta_n, g,
                            dry_depth, span_lo, span_hi)
            if max(j0 - 1, 0) <= a <= min(j1, ny - 1):
                row_x_faces(eta, h, u, v, slope_x, x_faces, a, a % 3, modes, eta_in,
                            edge_q_w, edge_q_e, edge_eta_w, edge_eta_e, g, dry_depth,
                            span_lo, span_hi)
            k = a - 1
            if max(j0 - 1, 0) <= k <= min(j1, ny - 1):
                s = k % 3
                limited[s] = row_outflow_ratios(
                    eta, h, x_faces, y_faces, k, s, (k + 1) % 3, inv_dx_c[k],
                    cos_north[k] * inv_dy, cos_south[k] * inv_dy, dt, span_lo, span_hi,
                    ratio)
            if j0 <= k <= j1:
                limit_row_faces(x_faces, y_faces, ratio, limited, k, k < j1, span_lo, span_hi, dt)
            j = a - 2
            if j0 <= j < j1:
                update_row((eta, h, qx, qy), (eta_out, qx_out, qy_out, u_out, v_out), M, N,
                           n2, slope_x, slope_y, x_faces, y_faces, j,
                           (inv_dx_c, inv_dy, cos_north, cos_south, coriolis_c), params,
                           span_lo, span_hi, final, time, (speed_depth, arrival_threshold),
                           (eta_max, arrival_time, speed_max, momentum_flux_max), rate_rows)
        restore_fp_mode(fp_mode)


@njit(parallel=True, cache=True)
def cell_velocities(eta, h, qx, qy, dry_depth, max_speed, u, v):
    """u, v = q / D in wet cells (0 in dry ones), capped at ``max_speed``; q follows the cap."""
    ny, nx = eta.shape
    for j in prange(ny):
        for i in range(nx):
            depth = eta[j, i] + h[j, i]
            wet = depth > dry_depth
            inv = typed(1.0, depth) / max(depth, dry_depth)
            uu = qx[j, i] * inv if wet else typed(0.0, depth)
            vv = qy[j, i] * inv if wet else typed(0.0, depth)
            speed = np.sqrt(uu * uu + vv * vv)
            cap = max_speed / speed if speed > max_speed else typed(1.0, depth)
            u[j, i] = uu * cap
            v[j, i] = vv * cap
            qx[j, i] = u[j, i] * max(depth, typed(0.0, depth))
            qy[j, i] = v[j, i] * max(depth, typed(0.0, depth))
