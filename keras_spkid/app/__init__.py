"""The Gradio demo's back end: enrol people, identify, verify and listen live.

* :mod:`~keras_spkid.app.clips`: browser and file audio to checked 16 kHz waveforms;
* :mod:`~keras_spkid.app.live`: the rolling microphone window of the Live tab;
* :mod:`~keras_spkid.app.galleries`: where the demo's galleries live, which model made them;
* :mod:`~keras_spkid.app.service`: :class:`SpeakerService`, everything the page does,
  without Gradio (plain data in and out, :class:`~keras_spkid.errors.SpkidError` for bad
  input), so it is tested without a browser;
* :mod:`~keras_spkid.app.default_gallery`: rebuilds the built-in "celebrity" gallery;
* :mod:`~keras_spkid.app.ui`: the ``gr.Blocks`` page on top of the service.
"""
