"""nanbu-secops: security operations for the units of Nanbu County's government-website platform.

Data flows one way: ``collect`` gathers facts from a target (a root path and, on the live
system, psutil), ``checks`` turn facts and policy parameters into results, ``report`` renders
them. ``policy`` loads the operator-editable YAML that ties every control to an article of the
regulation (南部县政府网站集约化平台管理办法).
"""

__version__ = "0.1.0"
