"""The commands: each script's main, run by the script of a checkout (python recognize_video.py) and by
the command `pip install` makes of it (facerec-recognize); see COMMANDS."""

# script of a checkout -> (module here, installed command)
COMMANDS = {
    "imagecapture.py": ("capture", "facerec-capture"),
    "extract_embeddings.py": ("extract", "facerec-extract"),
    "recognize_video.py": ("recognize", "facerec-recognize"),
    "verify.py": ("verify", "facerec-verify"),
    "evaluate.py": ("evaluate", "facerec-evaluate"),
    "serve.py": ("serve", "facerec-serve"),
    "unknowns.py": ("unknowns", "facerec-unknowns"),
}
