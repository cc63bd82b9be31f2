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

Each stage is three parallel passes (few fork/join barriers per step): the slope pass
limits each cell's slopes once (each face used to recompute both its neighbours': 18
limited slopes per cell and stage instead of 8); the face pass computes every face's
fluxes (boundary faces from ghost states) and flags rows where a face could over-drain
a cell; the cell pass applies the limiter where flagged, updates the
state, applies friction and Coriolis, and (second stage) the running maxima and the
wave-speed bound for the next time step. Loops are branch-free in the interior so LLVM
vectorises them.

Layout: ``eta``/``h``/``qx``/``qy``/``u``/``v`` (ny, nx); x-face arrays (ny, nx + 1)
(face i lies between cells i-1 and i); y-face arrays (ny + 1, nx). The face mass fluxes of
the two stages are averaged into ``M``/``N``: the volume actually moved through each face
per unit width and time over the step (used by nesting, gauges and diagnostics).
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
# step cost 5x more (11.2 against 2.1 ms CPU on a 128 x 129 coast).
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
def store_slopes(slopes, j, i, values):
    slopes[0, j, i] = values[0]
    slopes[1, j, i] = values[1]
    slopes[2, j, i] = values[2]
    slopes[3, j, i] = values[3]


@njit(parallel=True, fastmath=FV_FASTMATH, cache=True)
def cell_slopes(eta, h, u, v, dry_depth, theta, span_lo, span_hi, slope_x, slope_y):
    """Half the limited slopes of each cell's surface, depth and velocities along x and
    y, ``slope_x``/``slope_y`` (4, ny, nx): eta, D, u, v. Zero where the cell or a
    neighbour along that axis is dry or missing (first-order reconstruction there).

    Computed once per cell and stage and read by both passes: the face pass
    reconstructs each face's two states from them (each face used to recompute both
    neighbours' slopes: every cell's twice along each axis), the cell pass takes the
    surface slope for its pressure term. Covers each row's span and the cells beside it and
    beside the spans of the rows above and below: every cell a face of the stage reads.
    """
    ny, nx = eta.shape
    zero = typed(0.0, dry_depth)
    for row in prange(ny):
        j = np.int64(row)
        fp_mode = flush_denormals()
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
                    slope_y[q, j, i] = zero
        else:
            for i in range(first, stop):
                store_slopes(slope_y, j, i, limited_slopes(eta, h, u, v, j - 1, i, j, i, j + 1,
                                                           i, dry_depth, theta))
        # Along x: the edge columns have no outer neighbour; the interior, branch-free.
        for edge in (0, nx - 1):
            if first <= edge < stop:
                for q in range(4):
                    slope_x[q, j, edge] = zero
        for i in range(max(first, U1), min(stop, np.uint64(max(nx - 1, 1)))):
            store_slopes(slope_x, j, i, limited_slopes(eta, h, u, v, j, i - U1, j, i, j, i + U1,
                                                       dry_depth, theta))
        restore_fp_mode(fp_mode)


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


@njit(cache=True)
def drains(flux, outflow_per_flux, depth_behind, depth_ahead, dt):
    """Whether a face flux could take more than a quarter of its upwind cell's water."""
    available = depth_behind if flux > 0 else depth_ahead
    return abs(flux) * dt * outflow_per_flux > typed(0.25, dt) * available


@njit(inline="always", cache=True)
def x_face(eta, h, u, v, slope_x, j, i, g):
    """Fluxes across interior x-face (j, i) between cells i-1 and i (i unsigned)."""
    il = i - U1
    ir = i
    return riemann(eta[j, il] + slope_x[0, j, il], eta[j, il] + h[j, il] + slope_x[1, j, il],
                   u[j, il] + slope_x[2, j, il], v[j, il] + slope_x[3, j, il],
                   eta[j, ir] - slope_x[0, j, ir], eta[j, ir] + h[j, ir] - slope_x[1, j, ir],
                   u[j, ir] - slope_x[2, j, ir], v[j, ir] - slope_x[3, j, ir], g)


@njit(inline="always", cache=True)
def y_face(eta, h, u, v, slope_y, j, i, g):
    """Fluxes across interior y-face (j, i) between cells j-1 and j (normal velocity v)."""
    jl = j - 1
    jr = j
    return riemann(eta[jl, i] + slope_y[0, jl, i], eta[jl, i] + h[jl, i] + slope_y[1, jl, i],
                   v[jl, i] + slope_y[3, jl, i], u[jl, i] + slope_y[2, jl, i],
                   eta[jr, i] - slope_y[0, jr, i], eta[jr, i] + h[jr, i] - slope_y[1, jr, i],
                   v[jr, i] - slope_y[3, jr, i], u[jr, i] - slope_y[2, jr, i], g)


@njit(cache=True)
def store_face(fx, phx_l, phx_r, tx, j, i, fluxes):
    m, pl, pr, t = fluxes
    fx[j, i] = m
    phx_l[j, i] = pl
    phx_r[j, i] = pr
    tx[j, i] = t
    return m


@njit(parallel=True, fastmath=FV_FASTMATH, cache=True)
def face_fluxes(eta, h, u, v, slope_x, slope_y, fx, phx_l, phx_r, tx, fy, phy_l, phy_r, ty,
                modes, eta_in, edge_q_w, edge_q_e, edge_q_s, edge_q_n, edge_eta_w, edge_eta_e,
                edge_eta_s, edge_eta_n, inv_dx_c, inv_dy, cos_north, cos_south, dt, g,
                dry_depth, span_lo, span_hi, limit_rows):
    """Face pass of one stage: fluxes on the x-faces [lo, hi] of each row's active cells
    [lo, hi) and on the y-faces of those columns, from the states reconstructed with the
    slopes of :func:`cell_slopes`; ``limit_rows`` flags face rows where a face could
    drain more than a quarter of its upwind cell."""
    ny, nx = eta.shape
    one = typed(1.0, dt)
    quarter = typed(0.25, dt)
    for row in prange(ny + 1):
        j = np.int64(row)
        fp_mode = flush_denormals()
        flagged = False
        if j < ny and span_lo[j] < span_hi[j]:
            lo, hi = span_lo[j], span_hi[j]
            inv_dx = inv_dx_c[j]
            first = max(lo, 1)
            for i in range(np.uint64(first), np.uint64(max(min(hi, nx - 1) + 1, first))):
                m = store_face(fx, phx_l, phx_r, tx, j, i, x_face(eta, h, u, v, slope_x, j, i, g))
                flagged |= drains(m, inv_dx, eta[j, i - U1] + h[j, i - U1],
                                  eta[j, i] + h[j, i], dt)
            # West and east edges.
            for side in range(2):
                if (lo == 0) if side == 0 else (hi == nx):
                    i = 0 if side == 0 else nx - 1
                    face = 0 if side == 0 else nx
                    inward = one if side == 0 else -one
                    nested_q = edge_q_w[j] if side == 0 else edge_q_e[j]
                    nested_eta = edge_eta_w[j] if side == 0 else edge_eta_e[j]
                    d_c = eta[j, i] + h[j, i]
                    m, p, t = boundary_face(modes[side], inward, eta[j, i], d_c,
                                            inward * u[j, i], v[j, i], h[j, i], eta_in[side],
                                            nested_q, nested_eta, g, dry_depth)
                    store_face(fx, phx_l, phx_r, tx, j, face, (m, p, p, t))
                    flagged |= -inward * m * dt * inv_dx > quarter * d_c
        if 1 <= j <= ny - 1:
            # Columns active in either row the faces separate.
            lo = min(span_lo[j - 1], span_lo[j])
            hi = max(span_hi[j - 1], span_hi[j])
            for i in range(np.uint64(lo), np.uint64(max(hi, lo))):
                m = store_face(fy, phy_l, phy_r, ty, j, i, y_face(eta, h, u, v, slope_y, j, i, g))
                weight = cos_north[j - 1] if m > 0 else cos_south[j]
                flagged |= drains(m, inv_dy * weight, eta[j - 1, i] + h[j - 1, i],
                                  eta[j, i] + h[j, i], dt)
        elif ny >= 1:
            # South (face row 0) or north (face row ny) edge.
            side = 2 if j == 0 else 3
            jc = 0 if j == 0 else ny - 1
            inward = one if j == 0 else -one
            weight = cos_south[0] if j == 0 else cos_north[ny - 1]
            for i in range(span_lo[jc], span_hi[jc]):
                nested_q = edge_q_s[i] if j == 0 else edge_q_n[i]
                nested_eta = edge_eta_s[i] if j == 0 else edge_eta_n[i]
                d_c = eta[jc, i] + h[jc, i]
                m, p, t = boundary_face(modes[side], inward, eta[jc, i], d_c,
                                        inward * v[jc, i], u[jc, i], h[jc, i], eta_in[side],
                                        nested_q, nested_eta, g, dry_depth)
                store_face(fy, phy_l, phy_r, ty, j, i, (m, p, p, t))
                flagged |= -inward * m * dt * inv_dy * weight > quarter * d_c
        limit_rows[j] = 1 if flagged else 0
        restore_fp_mode(fp_mode)


@njit(cache=True)
def scale_face(fx, phx_l, phx_r, tx, j, i, r):
    fx[j, i] *= r
    phx_l[j, i] *= r
    phx_r[j, i] *= r
    tx[j, i] *= r


@njit(parallel=True, fastmath=FV_FASTMATH, cache=True)
def limit_fluxes(eta, h, fx, phx_l, phx_r, tx, fy, phy_l, phy_r, ty, inv_dx_c, inv_dy,
                 cos_north, cos_south, dt, span_lo, span_hi, ratio, limited_rows):
    """Exact outflow limiter of one stage: where the fluxes leaving a cell would take more
    water than it holds over ``dt``, scale every flux leaving it (mass, momentum,
    tangential) by holding / outflow. Each face takes the factor of the cell its water
    leaves, so depth stays non-negative and volume is conserved to round-off.

    ``ratio`` (ones outside the active cells, which this never writes) receives the
    factors; rows holding a factor below one are flagged in ``limited_rows`` and only
    their faces are rescaled. Run it after :func:`face_fluxes` flagged any face row."""
    ny, nx = eta.shape
    zero = typed(0.0, dt)
    one = typed(1.0, dt)
    for row in prange(ny):
        j = np.int64(row)
        fp_mode = flush_denormals()
        inv_dx = inv_dx_c[j]
        north = cos_north[j] * inv_dy
        south = cos_south[j] * inv_dy
        limited = False
        for i in range(np.uint64(span_lo[j]), np.uint64(max(span_hi[j], span_lo[j]))):
            # Grouped so that mirror-image cells compute bit-identical factors.
            outflow = dt * ((max(fx[j, i + U1], zero) - min(fx[j, i], zero)) * inv_dx
                            + (max(fy[j + 1, i], zero) * north - min(fy[j, i], zero) * south))
            depth = eta[j, i] + h[j, i]
            drained = outflow > depth
            ratio[j, i] = depth / outflow if drained else one
            limited |= drained
        limited_rows[j] = 1 if limited else 0
        restore_fp_mode(fp_mode)
    for row in prange(ny + 1):
        j = np.int64(row)
        if j < ny and limited_rows[j] != 0:
            lo, hi = span_lo[j], span_hi[j]
            for k in range(lo, hi + 1):
                i = np.uint64(k)
                q = fx[j, i]
                r_west = ratio[j, i - U1] if k > 0 else one
                r_east = ratio[j, i] if k < nx else one
                scale_face(fx, phx_l, phx_r, tx, j, i, r_west if q > zero else r_east)
        below = j >= 1 and limited_rows[j - 1] != 0
        above = j < ny and limited_rows[j] != 0
        if below or above:
            rows = (j - 1, j) if 1 <= j <= ny - 1 else ((0, 0) if j == 0 else (ny - 1, ny - 1))
            lo = min(span_lo[rows[0]], span_lo[rows[1]])
            hi = max(span_hi[rows[0]], span_hi[rows[1]])
            for i in range(lo, hi):
                q = fy[j, i]
                r_south = ratio[j - 1, i] if j > 0 else one
                r_north = ratio[j, i] if j < ny else one
                scale_face(fy, phy_l, phy_r, ty, j, i, r_south if q > zero else r_north)


@njit(inline="always", cache=True)
def cell_update(eta, h, qx, qy, eta_out, qx_out, qy_out, u_out, v_out, fx, phx_l, phx_r,
                tx, fy, phy_l, phy_r, ty, n2, slope_x, slope_y, j, i, metric, params, final):
    """Euler update of cell (j, i) from its (limited) face fluxes.

    ``metric``: (1/dx, 1/dy, north and south weights over dy, Coriolis f) of the row;
    ``params``: (dt, g, dry depth, max speed). The surface slopes come from
    :func:`cell_slopes`. ``final`` (Heun's second stage) averages the result with the
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
    slope_eta_x = slope_x[0, j, i]
    slope_eta_y = slope_y[0, j, i]
    two_g_depth = typed(2.0, dt) * g * depth
    ie1 = i + U1
    new_eta = eta[j, i] - dt * ((fx[j, ie1] - fx[j, i]) * inv_dx
                                + (fy[j + 1, i] * north - fy[j, i] * south))
    new_qx = qx[j, i] - dt * (
        (phx_l[j, ie1] - phx_r[j, i]) * inv_dx + two_g_depth * slope_eta_x * inv_dx
        + (ty[j + 1, i] * north - ty[j, i] * south) - f * qy[j, i])
    new_qy = qy[j, i] - dt * (
        (tx[j, ie1] - tx[j, i]) * inv_dx + (phy_l[j + 1, i] * north - phy_r[j, i] * south)
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


@njit(parallel=True, fastmath=FV_FASTMATH, cache=True)
def update_cells(eta, h, qx, qy, eta_out, qx_out, qy_out, u_out, v_out, fx,
                 phx_l, phx_r, tx, fy, phy_l, phy_r, ty, M, N, n2, slope_x, slope_y,
                 inv_dx_c, inv_dy, cos_north, cos_south, coriolis_c, dt, g, dry_depth,
                 max_speed, span_lo, span_hi, final, time, speed_depth, arrival_threshold, eta_max,
                 arrival_time, speed_max, momentum_flux_max, rate_rows):
    """Cell pass of one stage: the Euler update of the active cells of the stage state
    (eta, qx, qy) with the (limited) face fluxes.

    First stage (``final`` False): writes the result to ``*_out`` and half the face mass
    fluxes to M, N. Second stage: the output arrays hold the start-of-step state, and
    each cell's becomes the mean of it and the result (Heun); adds half its mass fluxes
    to M, N, and updates the maxima and ``rate_rows`` ((|u| + c)/dx + (|v| + c)/dy per
    row, 1/s). The interior loops are branch-free so LLVM vectorises them. (The start of
    the step is read from the output arrays rather than passed apart: each array more
    in a loop adds LLVM run-time alias checks, and past their limit the loop stays
    scalar: 3.5x slower.)
    """
    ny, nx = eta.shape
    zero = typed(0.0, dt)
    half = typed(0.5, dt)
    params = (dt, g, dry_depth, max_speed)
    for row in prange(ny):
        j = np.int64(row)
        fp_mode = flush_denormals()
        lo, hi = span_lo[j], span_hi[j]
        metric = (inv_dx_c[j], inv_dy, cos_north[j] * inv_dy, cos_south[j] * inv_dy,
                  coriolis_c[j])
        # Branch-free, vectorised. Two loops with a constant ``final``: a loop that
        # branches on it is too large for LLVM to unswitch, and stays scalar.
        first = np.uint64(lo)
        stop = np.uint64(max(hi, lo))
        if final:
            for i in range(first, stop):
                cell_update(eta, h, qx, qy, eta_out, qx_out, qy_out, u_out, v_out, fx,
                            phx_l, phx_r, tx, fy, phy_l, phy_r, ty, n2, slope_x, slope_y, j,
                            i, metric, params, True)
        else:
            for i in range(first, stop):
                cell_update(eta, h, qx, qy, eta_out, qx_out, qy_out, u_out, v_out, fx,
                            phx_l, phx_r, tx, fy, phy_l, phy_r, ty, n2, slope_x, slope_y, j,
                            i, metric, params, False)
        # The row's largest rate, taken in the maxima loop. The loop vectorises with an
        # unsigned index (a signed one adds negative-index wrap-around and kept it
        # scalar) and a NaN-free max (LLVM vectorises no other max reduction).
        rate = zero
        if final:
            for i in range(np.uint64(lo), np.uint64(max(hi, lo))):
                rate = max_of_numbers(rate, record_cell_maxima(
                    eta_out, h, u_out, v_out, j, i, inv_dx_c[j], inv_dy, g, dry_depth,
                    speed_depth, arrival_threshold, time, eta_max, arrival_time, speed_max,
                    momentum_flux_max))
        rate_rows[j] = rate
        # Volume moved through the faces over the step: half of each stage's flux.
        # (Unsigned indices and a loop per stage: so they vectorise.)
        below = span_lo[j - 1] if j > 0 else lo
        above = span_hi[j - 1] if j > 0 else hi
        for face_row, start, stop, flux, mean in (
                (j, lo, min(hi + 1, nx + 1), fx, M), (j, min(lo, below), max(hi, above), fy, N),
                (ny, lo, hi if j == ny - 1 else lo, fy, N)):
            first = np.uint64(start)
            last = np.uint64(max(stop, start))
            if final:
                for i in range(first, last):
                    mean[face_row, i] += half * flux[face_row, i]
            else:
                for i in range(first, last):
                    mean[face_row, i] = half * flux[face_row, i]
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
