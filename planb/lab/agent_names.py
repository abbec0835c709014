"""Word lists for the lab's synthetic agents: French names, departments and job titles.

Accents, apostrophes, hyphens and spaces are there on purpose: they are what real
directories hold and what DN/filter escaping and login derivation must survive.
"""

from __future__ import annotations

GIVEN_NAMES = (
    "Adèle", "Agnès", "Aimé", "Alexandre", "Alice", "Amélie", "Anaïs", "André", "Anne",
    "Antoine", "Arnaud", "Aurélie", "Baptiste", "Béatrice", "Benoît", "Bérénice", "Bernard",
    "Brigitte", "Camille", "Capucine", "Caroline", "Cécile", "Céline", "Charles", "Chloé",
    "Christophe", "Claire", "Clément", "Colette", "Damien", "Daniel", "Delphine", "Denis",
    "Dominique", "Édith", "Édouard", "Éléonore", "Élise", "Éloïse", "Émile", "Émilie",
    "Emmanuel", "Éric", "Estelle", "Étienne", "Eugénie", "Fabien", "Fabrice", "Félix",
    "Florence", "François", "Françoise", "Frédéric", "Gaëlle", "Gaël", "Geneviève", "Gérard",
    "Gilles", "Grégoire", "Guillaume", "Hélène", "Henri", "Hervé", "Hugo", "Inès", "Irène",
    "Isabelle", "Jacques", "Jean", "Jean-Baptiste", "Jean-Luc", "Jeanne", "Jérôme", "Joël",
    "Joséphine", "Julie", "Julien", "Karine", "Laëtitia", "Laure", "Laurent", "Léa", "Léon",
    "Léonie", "Loïc", "Louis", "Louise", "Lucie", "Lucien", "Maël", "Maëlys", "Manon",
    "Marc", "Margaux", "Marie", "Marie-Hélène", "Martine", "Mathéo", "Mathilde", "Maxime",
    "Mélanie", "Michel", "Michèle", "Mireille", "Nathalie", "Nicolas", "Noé", "Noémie",
    "Océane", "Olivier", "Pascal", "Patrice", "Pénélope", "Philippe", "Pierre", "Raphaël",
    "Rémi", "Renée", "Romain", "Sébastien", "Séverine", "Simon", "Solène", "Sophie",
    "Stéphane", "Sylvie", "Thérèse", "Thibault", "Théo", "Valérie", "Véronique", "Victor",
    "Yannick", "Yves", "Zoé",
)

SURNAMES = (
    "André", "Arnaud", "Barbier", "Bénard", "Bernard", "Berthelot", "Blanc", "Bonnet",
    "Bouvier", "Brun", "Carré", "Chevalier", "Clément", "Colin", "Crépin", "D'Angelo",
    "David", "Denis", "Dubœuf", "Dubois", "Dufour", "Dumont", "Dupont", "Durand", "Fabre",
    "Faure", "Fèvre", "Fontaine", "Fournier", "François", "Gaillard", "Garcia", "Garnier",
    "Gauthier", "Génin", "Gérard", "Girard", "Giraud", "Guérin", "Hébert", "Henry",
    "Jolivet", "Joly", "Lacroix", "Lambert", "Laurent", "Le Gall", "Le Goff", "Lebrun",
    "Leclerc", "Lefèvre", "Lefebvre", "Legrand", "Lemaître", "Lemoine", "Leroy", "Lévêque",
    "Lucas", "Marchand", "Martin", "Masson", "Mathieu", "Ménard", "Mercier", "Meunier",
    "Mézière", "Michel", "Moreau", "Morel", "Morin", "N'Diaye", "Nicolas", "Noël", "Pérès",
    "Perrin", "Petit", "Picard", "Poirier", "Renaud", "Richard", "Rivière", "Robert",
    "Robin", "Roche", "Rousseau", "Roussel", "Roux", "Saint-Éloi", "Sénéchal", "Simon",
    "Thévenin", "Thomas", "Vérot", "Vincent", "Žukauskas", "Bœuf", "Dujardin", "Lefort",
    "Besançon", "Aubrée", "Cholet", "Daguerre", "Écuyer", "Ferrand", "Goulet", "Hamelin",
    "Imbert", "Jacquemin", "Klein", "Laporte", "Maréchal", "Ollivier", "Paquet", "Quéméner",
    "Rey", "Sauvage", "Tessier", "Urbain", "Vasseur", "Weber", "Yilmaz", "Zimmermann",
)

#: 50 policy areas; each combined with three kinds of unit gives 150 departments.
DEPARTMENT_AREAS = (
    "l'Eau", "la Voirie", "la Propreté", "l'Éducation", "la Petite enfance", "la Culture",
    "l'Urbanisme", "l'Habitat", "la Santé", "l'Action sociale", "l'Insertion",
    "l'Environnement", "l'Énergie", "la Mobilité", "les Finances", "les Ressources humaines",
    "l'Informatique", "la Commande publique", "les Affaires juridiques", "la Communication",
    "l'Économie", "l'Emploi", "le Tourisme", "les Sports", "la Jeunesse", "les Personnes âgées",
    "le Handicap", "la Protection de l'enfance", "les Bâtiments", "le Patrimoine",
    "les Espaces verts", "l'Assainissement", "la Collecte des déchets", "la Prévention",
    "la Sécurité civile", "les Archives", "les Bibliothèques", "les Musées", "l'Évaluation",
    "la Coopération internationale", "l'Agriculture", "la Logistique", "le Courrier",
    "l'Accueil", "la Relation usagers", "la Démocratie participative", "les Relations presse",
    "le Numérique responsable", "la Qualité de l'air", "l'Innovation",
)
DEPARTMENT_KINDS = ("Direction de", "Service de", "Mission de")

TITLES = (
    "Adjoint administratif", "Adjointe administrative", "Rédacteur", "Rédactrice",
    "Attaché territorial", "Attachée territoriale", "Ingénieur", "Ingénieure", "Technicien",
    "Technicienne", "Agent de maîtrise", "Chef de service", "Cheffe de service",
    "Directeur adjoint", "Directrice adjointe", "Chargé de mission", "Chargée de mission",
    "Assistant de direction", "Gestionnaire comptable", "Éducatrice de jeunes enfants",
    "Animateur", "Bibliothécaire", "Médiateur numérique", "Agent d'accueil",
    "Responsable d'équipe", "Juriste", "Archiviste", "Conducteur d'opérations",
)

#: Names the first agents of every lab carry, deterministically: characters DN and
#: filter syntax give a meaning to (``, + " \\ < > ; =``, a leading ``#``, leading
#: or trailing spaces), that LDIF must write in base64 (non-ASCII, spaces at the ends)
#: or that careless UTF-8 handling breaks (accents, an emoji, an apostrophe). They
#: must reach the fallback slapd and Synapse intact. (given name, surname); each
#: still yields a login.
AWKWARD_NAMES = (
    ("Jean, fils", "Dupont+Durand"),
    ('Marie "Mimi"', "Le Goff\\Back"),
    ("Anne <RH>", "Martin;Petit=Grand"),
    ("#Hugo", "Bernard"),
    (" Lucie", "Moreau "),
    ("Zoé-Éléonore", "Çağlar Ñúñez"),
    ("Théo 🚀", "Robert"),
    ("D'Artagnan", "O'Connor"),
)
