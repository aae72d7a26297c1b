"""Getting VoxCeleb onto disk, in the official layouts.

* :mod:`~keras_spkid.download.rescrape`: re-scrape VoxCeleb from YouTube with the
  URL + timestamp txt files; :mod:`~keras_spkid.download.youtube` gets one video's
  audio with the yt-dlp Python API.
* :mod:`~keras_spkid.download.official`: the official releases; built on
  :mod:`~keras_spkid.download.archives` (parts, MD5 sums, joining, safe extraction)
  and :mod:`~keras_spkid.download.convert` (parallel m4a to wav).
* :mod:`~keras_spkid.download.fetch`: resumable HTTP downloads (Range requests,
  retries, credentials that are never shown).
* :mod:`~keras_spkid.download.ffmpeg`, :mod:`~keras_spkid.download.files`,
  :mod:`~keras_spkid.download.retry`: the shared pieces (decoding to 16 kHz PCM,
  atomic writes, retries with back-off).

Every step writes through a temporary ``*.part`` name and renames it when complete,
so a killed run leaves nothing half-written under a final name, and the same command
resumes where it stopped. MUSAN and the RIRs are in :mod:`~keras_spkid.download.augmentation`.
"""
