"""ODE oracles shared by the neuron tests (SciPy, float64)."""

import math

from scipy.integrate import solve_ivp


def alif_spike_times(p, current: float, t_end: float) -> list[float]:
    """Spike times (ms) in [0, t_end) of the adaptive LIF ``p`` (an ``ALIFParams``) at a
    constant ``current`` (nA): tau_m dV/dt = -(V - E_L) + R (I - w), tau_w dw/dt = -w from
    (E_L, 0); at V = theta a spike, w += b, V held at V_r for t_ref ms (w decaying). SciPy's
    DOP853 with event location, rtol = atol = 1e-12."""

    def rhs(t, y):
        return [(-(y[0] - p.E_L) + p.R * (current - y[1])) / p.tau_m, -y[1] / p.tau_w]

    def cross(t, y):
        return y[0] - p.theta

    cross.terminal, cross.direction = True, 1
    t0, y, times = 0.0, [p.E_L, 0.0], []
    while t0 < t_end:
        sol = solve_ivp(rhs, (t0, t_end), y, events=cross, method="DOP853", rtol=1e-12, atol=1e-12)
        if sol.status != 1:
            break
        t_s, w = sol.t_events[0][0], sol.y_events[0][0][1] + p.b
        times.append(t_s)
        t0, y = t_s + p.t_ref, [p.V_r, w * math.exp(-p.t_ref / p.tau_w)]
    return times
