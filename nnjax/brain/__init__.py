"""The brain side: spiking neurons, synchrony, sleep and dreams, as differentiable JAX code.

Import the submodules directly, e.g. ``from nnjax.brain import neurons``:

* :mod:`~nnjax.brain.neurons`: discrete and continuous (leaky) integrate-and-fire neurons,
  f–I curves and their closed forms; :mod:`~nnjax.brain.hodgkin_huxley`: the 1952 squid axon.
* :mod:`~nnjax.brain.dynamics`: the step protocol every model below follows
  (``step(state, inputs, params, dt) -> state``, params a traced pytree) and its scan;
  :mod:`~nnjax.brain.adex`: adaptive exponential IF (Brette & Gerstner 2005, Naud et al.
  2008 patterns); :mod:`~nnjax.brain.izhikevich`: Izhikevich 2003;
  :mod:`~nnjax.brain.adaptive_lif`: adaptive LIF with exact, differentiable spike times;
  :mod:`~nnjax.brain.synapses`: exponential current- and conductance-based synapses with
  delay lines; :mod:`~nnjax.brain.plasticity`: pair and triplet STDP (all-to-all and
  nearest-spike) and homeostatic synaptic scaling.
* :mod:`~nnjax.brain.surrogate`: Heaviside spikes with surrogate gradients (``custom_vjp``).
* :mod:`~nnjax.brain.spiking`: LIF layers over a time axis that compose with nnjax layers,
  rate and latency encoders, spike-count and membrane decoders, ``spiking_mlp``.
* :mod:`~nnjax.brain.convert`: a trained ReLU MLP normalised and run as IF neurons.
* :mod:`~nnjax.brain.synchrony`: van Rossum distance, STTC, Golomb–Rinzel chi, coincidence
  detection; :mod:`~nnjax.brain.kuramoto`: coupled phase oscillators and their order parameter.
* :mod:`~nnjax.brain.continual`: class-incremental split digits / MNIST-1D (the splits in
  :mod:`~nnjax.brain.tasks`), forgetting metrics, sequential and joint baselines, every run
  through fit's driver; :mod:`~nnjax.brain.sleep`: Sleep Replay Consolidation and
  synaptic downscaling; :mod:`~nnjax.brain.homeostasis`: downscaling and pruning in a spiking
  network with fixed thresholds; :mod:`~nnjax.brain.dreams`: activation maximisation and
  DeepDream; :mod:`~nnjax.brain.generative_replay`: generative replay (a VAE, re-exported by
  ``dreams``); :mod:`~nnjax.brain.diversity`: how varied
  generated samples are;
  :mod:`~nnjax.brain.helmholtz`: wake–sleep for a Helmholtz machine with the exact KL;
  :mod:`~nnjax.brain.study`: the ``nnjax sleep`` study.
* :mod:`~nnjax.brain.rhythms`: spectra, band powers; ``filters``: zero-phase band-pass, moving
  RMS; ``detect``, ``hypnogram``, ``planted``: events.
* :mod:`~nnjax.brain.network`: recurrent E/I spiking networks in one scan (``circuits`` builds
  them); :mod:`~nnjax.brain.sleep_states`: wake, NREM and REM as neuromodulation, the
  hypnogram scheduler; ``activity``: ISI CV, correlations, rasters;
  :mod:`~nnjax.brain.consolidation`: sequence memory, replay and recall; ``night``: the
  ``nnjax night`` command's simulations, figures and report.
"""
