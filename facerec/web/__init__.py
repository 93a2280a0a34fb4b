"""The web page: a local server that names the faces of the browser's camera, enrols people and keeps the gallery.

`app.create_app` builds the Starlette application from an `engine.Engine` (the
package's Recogniser, enrolment and store, shared by every page); `serve.py` starts it.
"""
