"""Reports over stored run and reproduction folders (``layerib report``): :mod:`~layerib.report.html`."""
