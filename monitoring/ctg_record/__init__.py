"""The CTG record as a PDF: a labour's trace in the paper format clinicians file and read.

A4 landscape at 1 or 3 cm/min: the fetal heart rate on its 50-210 bpm grid with the 110-160
band shaded, the maternal heart rate on the same grid in its own colour, uterine activity
(0-100) below; time marks; the patient's identity, the place, the monitor and the page's time
span on every page; the clinicians' strip notes and the CTG analysis's events and FIGO
classification (``ctg.analysis``, window by window as the product classifies) along the trace;
seconds without a signal are gaps in the line.

Drawn with reportlab's canvas (a kept library: it writes a 12-hour record in a second or two,
docs/performance.md). Three modules: ``data`` reads what a record shows
(``ctg_record_data``), ``paper`` says where everything is on a page and in which ink
(``PageGeometry``, also for the tests that look at rendered pixels), ``render`` only draws
(``ctg_record_render``), so the drawing is tested and measured without a database.
"""
